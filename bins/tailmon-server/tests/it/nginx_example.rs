//! `packaging/nginx/tailmon-replicas.conf` (docs/scaling.md) passes
//! `nginx -t`, with its files (pid, logs, the TLS certificate and key)
//! moved into a temporary directory and a throwaway certificate in place.

use std::path::Path;
use std::process::Command;

const NGINX: &str = "/usr/sbin/nginx";

#[test]
fn the_replicas_nginx_example_passes_nginx_t() {
    if !Path::new(NGINX).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have nginx (apt-get install nginx; .ci/run installs it)"
        );
        eprintln!("skipping: nginx is missing (apt-get install nginx)");
        return;
    }
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/nginx/tailmon-replicas.conf");
    let text = std::fs::read_to_string(&example).expect("the example");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nginx-example");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).expect("the directory");
    let certificates = tailmon_testkit::TestCertificates::generate(&dir.join("tls"));
    let moved = [
        ("/run/nginx-tailmon.pid", dir.join("nginx.pid")),
        ("/var/log/nginx/", dir.join("logs/")),
        ("/etc/nginx/tls/tailmon.crt", certificates.cert_path.clone()),
        ("/etc/nginx/tls/tailmon.key", certificates.key_path.clone()),
    ];
    let mut config = text;
    for (path, to) in &moved {
        assert!(config.contains(path), "the example names {path}");
        let mut to = to.display().to_string();
        if path.ends_with('/') && !to.ends_with('/') {
            to.push('/');
        }
        config = config.replace(path, &to);
    }
    let config_path = dir.join("tailmon-replicas.conf");
    std::fs::write(&config_path, config).expect("the moved example");
    let out = Command::new(NGINX)
        .arg("-t")
        .arg("-c")
        .arg(&config_path)
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("logs/startup-error.log"))
        .output()
        .expect("nginx runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "nginx -t refused the example:\n{said}"
    );
    assert!(said.contains("test is successful"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
