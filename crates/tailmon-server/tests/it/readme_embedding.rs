//! The README's embedding snippet, built as a crate outside the workspace
//! that depends on `tailmon-server` by path, as an application that ran
//! `cargo add tailmon-server` would: what the README shows compiles against
//! the public surface alone.

use std::path::{Path, PathBuf};
use std::process::Command;

const START: &str = "<!-- embedding snippet:";
const END: &str = "<!-- end of the embedding snippet -->";

/// The Rust code between the README's snippet markers, fence removed.
fn snippet(readme: &str) -> String {
    let (_, after) = readme
        .split_once(START)
        .expect("the README marks its snippet");
    let (marked, _) = after.split_once(END).expect("the README ends its snippet");
    let (_, code) = marked
        .split_once("```rust,no_run\n")
        .expect("a rust,no_run block between the markers");
    let (code, _) = code.rsplit_once("```").expect("the block is closed");
    code.to_owned()
}

#[test]
fn the_snippet_is_taken_whole_from_between_the_markers() {
    let readme = "intro\n<!-- embedding snippet: note -->\n```rust,no_run\nfn main() {}\n```\n<!-- end of the embedding snippet -->\nafter ```rust,no_run\nno\n```";
    assert_eq!(snippet(readme), "fn main() {}\n");
}

#[test]
fn the_readme_embedding_snippet_builds_as_a_crate_of_its_own() {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .expect("crates/tailmon-server is two levels down");
    let readme = std::fs::read_to_string(workspace.join("README.md")).unwrap();
    let code = snippet(&readme);

    let dir = std::env::temp_dir().join(format!("tailmon-readme-embedding-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/main.rs"), code).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            r#"[package]
name = "readme-embedding"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
tailmon-server = {{ path = {path:?} }}
axum = {{ version = "0.8", default-features = false, features = ["http1", "tokio"] }}
tokio = {{ version = "1", features = ["rt-multi-thread", "macros", "net"] }}

# Not a member of any workspace above the temporary folder.
[workspace]
"#,
            path = manifest_dir.display().to_string(),
        ),
    )
    .unwrap();
    // The workspace's lock file: the same versions, all in the local
    // registry cache, so the build needs no network.
    std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let output = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", shared_target_dir())
        .env_remove("RUSTFLAGS")
        .output()
        .expect("running cargo");
    assert!(
        output.status.success(),
        "the README's snippet does not build as a crate of its own:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `target/outside-crates` of this workspace's target directory, kept
/// between runs so that only the first one builds the dependencies.
fn shared_target_dir() -> PathBuf {
    // This test runs as <target>/<profile>/deps/it-<hash>.
    let exe = std::env::current_exe().expect("the test's own path");
    exe.ancestors()
        .nth(3)
        .expect("<target>/<profile>/deps/it-<hash>")
        .join("outside-crates")
}
