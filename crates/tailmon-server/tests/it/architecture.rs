//! The folders of `src/` and which may use which (docs/architecture.md):
//! a use of another folder that the table does not allow, or an import
//! cycle between folders, fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each folder (or leaf module at the root) may use of the others.
/// `lib`, `builder`, `server` and `reloader` (which changes a running
/// server's parts) assemble everything and may use anything; so does
/// `limits`, which only re-exports the server's defaults.
const MAY_USE: &[(&str, &[&str])] = &[
    ("http", &["refusal_log"]),
    (
        "auth",
        &["http", "store", "clock", "refusal_log", "private_dir"],
    ),
    (
        "api",
        &[
            "auth",
            "ingest",
            "store",
            "http",
            "clock",
            "views",
            "alerts",
            "telemetry",
            "refusal_log",
        ],
    ),
    ("alerts", &["store", "clock"]),
    ("ingest", &["store", "clock", "telemetry"]),
    ("telemetry", &["clock"]),
    ("config_file", &["alerts"]),
    ("fuzzing", &["store"]),
    ("runtime_config", &["alerts", "auth", "store"]),
    (
        "backup",
        &["store", "private_dir", "alerts", "auth", "views"],
    ),
    ("store", &["clock", "private_dir", "refusal_log"]),
    ("views", &["private_dir"]),
    ("clock", &[]),
    ("refusal_log", &[]),
    ("private_dir", &[]),
];
const ASSEMBLY: &[&str] = &["lib", "builder", "server", "reloader", "limits"];

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The folder a file belongs to: its first directory under `src/`, or its
/// own name for a file at the root.
fn folder_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next().expect("a component");
    let first = first.as_os_str().to_string_lossy();
    first.strip_suffix(".rs").unwrap_or(&first).to_owned()
}

/// The code of a file without comments and without its unit tests.
fn code_of(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segments of every `crate::` path in `code`, groups included.
fn crate_paths(code: &str) -> Vec<String> {
    let mut heads = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            heads.push(item.clone());
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        heads.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                if depth == 1 {
                    item.push(c);
                }
            }
        } else {
            heads.push(rest.to_owned());
        }
    }
    heads
        .iter()
        .map(|h| {
            h.trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .collect()
}

/// The folder behind each name `lib.rs` re-exports at the root, publicly
/// or for the crate's own short paths (`pub(crate) use`).
fn root_names(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for statement in code_of(lib).split(';') {
        let statement = statement.trim();
        let Some(path) = statement
            .strip_prefix("pub use ")
            .or_else(|| statement.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let folder = path
            .split("::")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let items = path.rsplit_once("::").map_or(path, |(_, items)| items);
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            let item = item.trim();
            if !item.is_empty() {
                names.insert(item.to_owned(), folder.clone());
            }
        }
    }
    names
}

#[test]
fn folders_use_only_what_the_architecture_allows_and_never_in_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let names = root_names(&lib);
    assert!(names.contains_key("Store") && names.contains_key("ApiError"));
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for file in &files {
        let folder = folder_of(&src, file);
        let code = code_of(&std::fs::read_to_string(file).expect("source"));
        for head in crate_paths(&code) {
            let used = names.get(&head).cloned().unwrap_or(head);
            if used == folder {
                continue;
            }
            uses.entry(folder.clone()).or_default().insert(used.clone());
            if ASSEMBLY.contains(&folder.as_str()) {
                continue;
            }
            let allowed = MAY_USE
                .iter()
                .find(|(f, _)| *f == folder)
                .unwrap_or_else(|| panic!("{folder} is not in the table: add it"))
                .1;
            if !allowed.contains(&used.as_str()) {
                wrong.push(format!("{} uses {used}", file.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "uses the table does not allow:\n{}",
        wrong.join("\n")
    );
    // No cycle among the folders as they are (assembly aside).
    assert_acyclic(&uses, |folder| ASSEMBLY.contains(&folder));
}

/// Panics on a cycle in `uses`, naming it; `skip` leaves nodes out.
fn assert_acyclic(uses: &BTreeMap<String, BTreeSet<String>>, skip: impl Fn(&str) -> bool) {
    fn visit(
        node: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        skip: &dyn Fn(&str) -> bool,
        visiting: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(node) || skip(node) {
            return;
        }
        if let Some(at) = visiting.iter().position(|f| f == node) {
            panic!("import cycle: {} -> {node}", visiting[at..].join(" -> "));
        }
        visiting.push(node.to_owned());
        for next in uses.get(node).into_iter().flatten() {
            visit(next, uses, skip, visiting, done);
        }
        visiting.pop();
        done.insert(node.to_owned());
    }
    let mut visiting = Vec::new();
    let mut done = BTreeSet::new();
    for node in uses.keys() {
        visit(node, uses, &skip, &mut visiting, &mut done);
    }
}

/// Every whole path after `crate::` in `code`, groups expanded:
/// `crate::a::{b::C, d}` gives `a::b::C` and `a::d`.
fn crate_full_paths(code: &str) -> Vec<String> {
    /// Expands the use tree at the start of `rest` under `prefix`; returns
    /// how many bytes it took.
    fn tree(rest: &str, prefix: &str, out: &mut Vec<String>) -> usize {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let path = format!("{prefix}{name}");
        let mut at = name.len();
        if rest[at..].starts_with('{') {
            at += 1;
            loop {
                let skipped = rest[at..].len() - rest[at..].trim_start().len();
                at += skipped;
                if rest[at..].starts_with('}') || rest[at..].is_empty() {
                    return at + 1;
                }
                at += tree(&rest[at..], &path, out);
                let skipped = rest[at..].len() - rest[at..].trim_start().len();
                at += skipped;
                if rest[at..].starts_with(',') {
                    at += 1;
                }
            }
        }
        out.push(path.trim_end_matches(':').to_owned());
        at
    }
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        tree(&code[at + "crate::".len()..], "", &mut out);
    }
    out
}

/// The module path of a source file: `store/sqlite/raw_window.rs` is
/// `store::sqlite::raw_window`, a `mod.rs` its folder, `lib.rs` the root.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

#[test]
fn no_file_uses_another_in_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let modules: BTreeMap<String, &PathBuf> =
        files.iter().map(|f| (module_of(&src, f), f)).collect();
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, file) in &modules {
        let code = code_of(&std::fs::read_to_string(file).expect("source"));
        for path in crate_full_paths(&code) {
            let segments: Vec<&str> = path.split("::").collect();
            let used = (1..=segments.len())
                .rev()
                .map(|k| segments[..k].join("::"))
                .find(|candidate| modules.contains_key(candidate));
            let Some(used) = used else { continue };
            // A module and its parents or children are one unit here.
            let related = used.starts_with(&format!("{module}::"))
                || module.starts_with(&format!("{used}::"))
                || used == *module
                || module.is_empty();
            if !related {
                uses.entry(module.clone()).or_default().insert(used);
            }
        }
    }
    assert!(
        uses.get("store::sqlite::sqlite_writer")
            .is_some_and(|u| u.contains("store::sqlite::raw_window")),
        "the file graph is read: {uses:?}"
    );
    assert_acyclic(&uses, |_| false);
}

#[test]
fn paths_are_read_as_the_compiler_reads_them() {
    let heads = crate_paths("use crate::{a::b, C, d::{E, F}};\nlet x = crate::g::h();");
    assert_eq!(heads, ["a", "C", "d", "g"]);
    let names = root_names(
        "pub use x::y::{A, B};\npub use z::C;\n// pub use q::D;\npub(crate) use w::E;\npub mod v;",
    );
    assert_eq!(names["A"], "x");
    assert_eq!(names["C"], "z");
    assert_eq!(names["E"], "w");
    assert!(!names.contains_key("v"));
    assert!(!names.contains_key("D"));
}
