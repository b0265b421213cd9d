//! The real binary with authentication on, as an operator meets it: the
//! first start, tokens made with `tailmon-server token …` while it runs,
//! users added from standard input, and a log that never holds a secret.
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use tailmon_testkit::{RunningBinary, clean_command};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server_process::{announced_address, scratch_dir, start_in};

/// One HTTP/1.1 exchange on a fresh connection: status, headers, body.
pub(crate) async fn http(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// Runs `tailmon-server ARGS --data-dir DIR`, feeding `stdin`; returns stdout.
pub(crate) fn command(data_dir: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = clean_command(env!("CARGO_BIN_EXE_tailmon-server"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn report(device_id: &str) -> String {
    format!(
        r#"{{"device_id":"{device_id}","os_info":"Debian 12","cpu_usage":5.5,"ram_used_mb":100,"ram_total_mb":1000,"last_seen":"{}"}}"#,
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    )
}

fn set_cookie(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_secured_server_from_first_start_to_revoked_token() {
    let dir = scratch_dir("auth");
    let data = dir.join("data");
    let server: RunningBinary = start_in(
        &dir,
        &["--auth", "required"],
        &[
            ("RUST_LOG", "trace"),
            ("TAILMON_INTERVAL", "0.2"),
            ("TAILMON_DEVICE_ID", "local-host"),
        ],
    );
    let address = announced_address(&server).await;

    // First start: an admin with a random password in a private file.
    let line = server
        .stderr_line_containing("first start: created user admin")
        .await;
    assert!(line.contains("initial-admin-password"), "{line}");
    let password_file = data.join("initial-admin-password");
    let password = std::fs::read_to_string(&password_file).unwrap();
    let password = password.trim();
    assert!(password.len() >= 20);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&password_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    server
        .stderr_line_containing("tailmon-server token create")
        .await;

    // Nothing without credentials but health and the login page.
    assert_eq!(http(address, "GET", "/healthz", &[], "").await.0, 200);
    assert_eq!(http(address, "GET", "/login", &[], "").await.0, 200);
    assert_eq!(
        http(address, "GET", "/api/all_metrics", &[], "").await.0,
        401
    );
    assert_eq!(
        http(address, "POST", "/api/metrics", &[], &report("web-1"))
            .await
            .0,
        401
    );

    // A token made beside the running server works at once, for its devices only.
    let out = command(&data, &["token", "create", "--device", "web-*"], "");
    let token = out.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("tmn_"), "{out}");
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    assert_eq!(
        http(address, "POST", "/api/metrics", &auth, &report("web-1"))
            .await
            .0,
        200
    );
    assert_eq!(
        http(address, "POST", "/api/metrics", &auth, &report("db-1"))
            .await
            .0,
        403
    );

    // People sign in; the in-process agent needed no token.
    let wrong = r#"{"username":"admin","password":"not-the-password"}"#;
    assert_eq!(
        http(address, "POST", "/api/v1/login", &[], wrong).await.0,
        401
    );
    let login = format!(r#"{{"username":"admin","password":"{password}"}}"#);
    let (status, head, body) = http(address, "POST", "/api/v1/login", &[], &login).await;
    assert_eq!(status, 200, "{body}");
    let cookie = set_cookie(&head);
    let csrf: serde_json::Value = serde_json::from_str(&body).unwrap();
    let csrf = csrf["csrf_token"].as_str().unwrap().to_owned();
    let session = [("Cookie", cookie.as_str())];
    tailmon_testkit::eventually("the local host and web-1 listed", async || {
        let (status, _, body) = http(address, "GET", "/api/all_metrics", &session, "").await;
        if status == 200 && body.contains("\"local-host\"") && body.contains("\"web-1\"") {
            Ok(())
        } else {
            Err(format!("{status} {body}"))
        }
    })
    .await;

    // A viewer added from standard input reads but may not delete.
    command(
        &data,
        &["user", "add", "ann", "--role", "viewer"],
        "viewer-secret-9\n",
    );
    let viewer_login = r#"{"username":"ann","password":"viewer-secret-9"}"#;
    let (status, head, body) = http(address, "POST", "/api/v1/login", &[], viewer_login).await;
    assert_eq!(status, 200, "{body}");
    let viewer_cookie = set_cookie(&head);
    let viewer_csrf: serde_json::Value = serde_json::from_str(&body).unwrap();
    let viewer_csrf = viewer_csrf["csrf_token"].as_str().unwrap().to_owned();
    let viewer = [
        ("Cookie", viewer_cookie.as_str()),
        ("X-CSRF-Token", viewer_csrf.as_str()),
    ];
    assert_eq!(
        http(address, "DELETE", "/api/v1/devices/web-1", &viewer, "")
            .await
            .0,
        403
    );
    let admin = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    assert_eq!(
        http(address, "DELETE", "/api/v1/devices/web-1", &admin, "")
            .await
            .0,
        204
    );

    // A password changed from the command line ends the viewer's session.
    command(&data, &["user", "passwd", "ann"], "another-secret-9\n");
    assert_eq!(
        http(address, "GET", "/api/all_metrics", &viewer, "")
            .await
            .0,
        401
    );
    // Removed and added again as an admin, with no request in between: the
    // old session neither comes back nor gains the admin role.
    let viewer_login = r#"{"username":"ann","password":"another-secret-9"}"#;
    let (status, head, body) = http(address, "POST", "/api/v1/login", &[], viewer_login).await;
    assert_eq!(status, 200, "{body}");
    let old_cookie = set_cookie(&head);
    let old_csrf: serde_json::Value = serde_json::from_str(&body).unwrap();
    let old_csrf = old_csrf["csrf_token"].as_str().unwrap().to_owned();
    command(&data, &["user", "remove", "ann"], "");
    command(
        &data,
        &["user", "add", "ann", "--role", "admin"],
        "another-secret-9\n",
    );
    let old = [
        ("Cookie", old_cookie.as_str()),
        ("X-CSRF-Token", old_csrf.as_str()),
    ];
    let (status, _, body) = http(address, "POST", "/api/v1/tokens", &old, r#"{"name":"x"}"#).await;
    assert_eq!(status, 401, "the old session made a token: {body}");

    // Revoked beside the running server: refused from the next request.
    let list = command(&data, &["token", "list"], "");
    let id = token.split('_').nth(1).unwrap();
    assert!(list.contains(id), "{list}");
    command(&data, &["token", "revoke", id], "");
    assert_eq!(
        http(address, "POST", "/api/metrics", &auth, &report("web-1"))
            .await
            .0,
        401
    );

    // At trace level, the log holds none of the secrets that went by.
    let log = server.stderr();
    let session_id = cookie.split_once('=').unwrap().1;
    let secrets = [
        ("the token", token.as_str()),
        ("the admin password", password),
        ("a wrong password", "not-the-password"),
        ("the viewer password", "viewer-secret-9"),
        ("the viewer's new password", "another-secret-9"),
        ("a session cookie", session_id),
        ("a CSRF token", csrf.as_str()),
    ];
    for (what, secret) in secrets {
        assert!(!secret.is_empty());
        assert!(!log.contains(secret), "{what} is in the log:\n{log}");
    }
    assert!(log.contains("signed in"), "the log does say what happened");
}
