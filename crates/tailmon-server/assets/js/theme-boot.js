// Tailmon: applies the saved theme before the page paints (a classic
// script in <head>, so there is no flash of the other theme). The theme
// toggle in shell.js changes it later. No exports.
(function () {
  try {
    var t = localStorage.getItem('tailmon-theme');
    if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
  } catch (err) {
    /* no storage: follow the system */
  }
})();
