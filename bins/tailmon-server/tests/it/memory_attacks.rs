//! The two memory attacks of the security review, against the real binary
//! with its resident memory read before and after: a crowd of sign-ins
//! from many addresses, and reports with huge device ids under a
//! device-bound token.
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

use std::net::{IpAddr, SocketAddr};

use tailmon_testkit::RunningBinary;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth_binary::{command, http};
use crate::server_process::{announced_address, scratch_dir, start_in};

const MIB: u64 = 1024 * 1024;

fn resident(server: &RunningBinary) -> u64 {
    server
        .resident_memory_bytes()
        .expect("the server's resident memory (Linux /proc)")
}

/// A sign-in for `username` sent from `source`: the answer's status line
/// and head.
async fn login_from(address: SocketAddr, source: IpAddr, username: String) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    let body = format!(r#"{{"username":"{username}","password":"some guess 123"}}"#);
    let request = format!(
        "POST /api/v1/login HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_of_sign_ins_from_many_addresses_leaves_memory_bounded() {
    let dir = scratch_dir("login-crowd");
    let server = start_in(&dir, &["--auth", "required", "--no-local-agent"], &[]);
    let address = announced_address(&server).await;
    let before = resident(&server);

    // The review's attack: 120 at once for unknown names, 3 from each of
    // 40 addresses. Each check that runs takes 19 MiB.
    let mut attempts = Vec::new();
    for host in 1..=40u8 {
        for n in 0..3 {
            let source = IpAddr::from([127, 0, 1, host]);
            attempts.push(tokio::spawn(login_from(
                address,
                source,
                format!("nobody-{host}-{n}"),
            )));
        }
    }
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for attempt in attempts {
        let answer = attempt.await.unwrap();
        let status = answer.get(9..12).unwrap_or("none").to_owned();
        if status == "503" || status == "429" {
            assert!(
                answer.to_ascii_lowercase().contains("retry-after:"),
                "{answer}"
            );
        }
        *statuses.entry(status).or_default() += 1;
    }
    let after = resident(&server);
    eprintln!(
        "resident memory {} MiB before, {} MiB after; answers {statuses:?}",
        before / MIB,
        after / MIB
    );
    // Wrong (401) or turned away to come back later (503); nothing else.
    assert!(
        statuses.keys().all(|s| s == "401" || s == "503"),
        "{statuses:?}"
    );
    assert!(
        statuses.get("401").copied().unwrap_or(0) > 0,
        "{statuses:?}"
    );
    // One 19 MiB area per core at most, whatever the number of addresses
    // (it was 3 GB before the bound).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let allowed = cores * 19 * MIB + 64 * MIB;
    assert!(
        after.saturating_sub(before) < allowed,
        "resident memory went from {} MiB to {} MiB ({statuses:?})",
        before / MIB,
        after / MIB
    );
    // Still serving.
    assert_eq!(http(address, "GET", "/healthz", &[], "").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reports_with_huge_ids_pin_no_memory_nor_a_place_under_the_token_cap() {
    let dir = scratch_dir("huge-ids");
    let data = dir.join("data");
    let server = start_in(
        &dir,
        &[
            "--auth",
            "required",
            "--no-local-agent",
            "--store",
            "memory",
        ],
        &[],
    );
    let address = announced_address(&server).await;
    let out = command(
        &data,
        &["token", "create", "--device", "web-*", "--max-devices", "3"],
        "",
    );
    let bearer = format!("Bearer {}", out.lines().last().unwrap().trim());
    let auth = [("Authorization", bearer.as_str())];
    let report = |device_id: &str| {
        format!(
            r#"{{"device_id":"{device_id}","os_info":"Debian 12","cpu_usage":5.5,"ram_used_mb":100,"ram_total_mb":1000,"last_seen":"{}"}}"#,
            time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        )
    };
    // Warm up the paths, so that what is measured is what the attack pins.
    for n in 0..20 {
        let (status, _, _) = http(
            address,
            "POST",
            "/api/metrics",
            &auth,
            &report(&format!("web-{n}-{}", "x".repeat(60_000))),
        )
        .await;
        assert_eq!(status, 422);
    }
    let before = resident(&server);
    for n in 0..1000 {
        let id = format!("web-{n}-{}", "x".repeat(60_000));
        let (status, _, body) = http(address, "POST", "/api/metrics", &auth, &report(&id)).await;
        assert_eq!(status, 422, "{body}");
    }
    let after = resident(&server);
    eprintln!(
        "resident memory {} MiB before, {} MiB after",
        before / MIB,
        after / MIB
    );
    assert!(
        after.saturating_sub(before) < 16 * MIB,
        "resident memory went from {} MiB to {} MiB (60 MB more before the fix)",
        before / MIB,
        after / MIB
    );
    // None of them took one of the token's three places.
    for device in ["web-1", "web-2", "web-3"] {
        let (status, _, body) = http(address, "POST", "/api/metrics", &auth, &report(device)).await;
        assert_eq!(status, 200, "{device}: {body}");
    }
    let (status, _, _) = http(address, "POST", "/api/metrics", &auth, &report("web-4")).await;
    assert_eq!(status, 403, "the cap holds");
}
