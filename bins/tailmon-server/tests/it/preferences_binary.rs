//! Saved dashboard preferences through the real binary: they survive a
//! restart, in a private file of the data directory, and go with a user
//! removed from the command line while the server was down.
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

use std::net::SocketAddr;

use crate::auth_binary::{command, http};
use crate::server_binary::stop_cleanly;
use crate::server_process::{announced_address, scratch_dir, start_in};

/// Signs in; the headers a request that changes something needs.
async fn sign_in(address: SocketAddr, username: &str, password: &str) -> [(String, String); 2] {
    let login = format!(r#"{{"username":"{username}","password":"{password}"}}"#);
    let (status, head, body) = http(address, "POST", "/api/v1/login", &[], &login).await;
    assert_eq!(status, 200, "{body}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    [
        ("Cookie".to_owned(), cookie),
        (
            "X-CSRF-Token".to_owned(),
            body["csrf_token"].as_str().unwrap().to_owned(),
        ),
    ]
}

fn refs(headers: &[(String, String); 2]) -> [(&str, &str); 2] {
    [
        (headers[0].0.as_str(), headers[0].1.as_str()),
        (headers[1].0.as_str(), headers[1].1.as_str()),
    ]
}

#[tokio::test]
async fn preferences_survive_a_restart() {
    let dir = scratch_dir("preferences");
    let data = dir.join("data");
    let args = ["--auth", "required", "--no-local-agent"];
    let server = start_in(&dir, &args, &[]);
    let address = announced_address(&server).await;
    server
        .stderr_line_containing("first start: created user admin")
        .await;
    let password = std::fs::read_to_string(data.join("initial-admin-password")).unwrap();
    let admin = sign_in(address, "admin", password.trim()).await;
    let (status, _, body) = http(
        address,
        "POST",
        "/api/v1/users",
        &refs(&admin),
        r#"{"username":"ann","password":"viewer-secret-9","role":"viewer"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let ann = sign_in(address, "ann", "viewer-secret-9").await;

    let admin_choice =
        r#"{"fleet_metrics":["disk","cpu"],"device_charts":["load","cpu_cores"],"theme":"dark"}"#;
    let (status, _, body) = http(
        address,
        "PUT",
        "/api/v1/preferences",
        &refs(&admin),
        admin_choice,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = http(
        address,
        "PUT",
        "/api/v1/preferences",
        &refs(&ann),
        r#"{"theme":"light"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    stop_cleanly(server).await;

    let file = data.join("preferences.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private");
    }

    // Ann is removed from the command line while the server is down.
    command(&data, &["user", "remove", "ann"], "");
    let server = start_in(&dir, &args, &[]);
    let address = announced_address(&server).await;
    let admin = sign_in(address, "admin", password.trim()).await;
    let (status, _, body) = http(address, "GET", "/api/v1/preferences", &refs(&admin), "").await;
    assert_eq!(status, 200, "{body}");
    let saved: serde_json::Value = serde_json::from_str(&body).unwrap();
    let expected: serde_json::Value = serde_json::from_str(admin_choice).unwrap();
    assert_eq!(saved, expected, "the same choices, in the same order");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("\"ann\""),
        "a removed user's choices go: {text}"
    );
    stop_cleanly(server).await;
}
