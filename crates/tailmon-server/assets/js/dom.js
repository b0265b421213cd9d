// Tailmon dashboard: small DOM helpers. Text always goes in as text.
//
// Exports:
//   el(tag, className?, text?)     a new element; `text` set with textContent
//   setText(node, value)           sets textContent only when it changed
//   setAttr(node, name, value)     sets (or, for null, removes) an attribute when it changed
//   field(form, labelText, input)  appends <label> + input (input gets an id) to form
//   showError(node, err)           the ApiError's message in node (role=alert), or hides it
'use strict';

let ids = 0;

export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

export function setText(node, value) {
  const v = String(value);
  if (node.textContent !== v) node.textContent = v;
}

export function setAttr(node, name, value) {
  if (value === null || value === undefined) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, String(value));
  }
}

export function field(form, labelText, input) {
  if (!input.id) {
    ids += 1;
    input.id = 'f-' + ids;
  }
  const label = el('label', null, labelText);
  label.htmlFor = input.id;
  const wrap = el('div', 'field');
  wrap.append(label, input);
  form.append(wrap);
  return input;
}

export function showError(node, err) {
  if (!err) {
    node.hidden = true;
    node.textContent = '';
    return;
  }
  node.setAttribute('role', 'alert');
  node.textContent = err && err.message ? String(err.message) : String(err);
  node.hidden = false;
}
