//! The Dockerfiles, `docker-compose.yml`, the Kustomize manifests in
//! `deploy/` and the CI workflow, checked as far as they can be without a
//! container engine or a cluster: `scripts/check_packaging.py` parses them,
//! runs `docker compose config`, `kubectl kustomize` and
//! `kubernetes-validate --strict`, and checks what they promise (non-root
//! images, the agent's read-only view of the host, probes, one replica…).

use std::path::Path;
use std::process::Command;

#[test]
fn docker_compose_kubernetes_and_ci_files_check_out() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_packaging.py");
    let Ok(out) = Command::new("python3").arg(&script).output() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 is needed to check the packaging files"
        );
        eprintln!("no python3 here: the packaging files were not checked");
        return;
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{said}");
    assert!(out.status.success(), "{said}");
}
