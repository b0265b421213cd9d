//! `tailmon-server org …`, `token create --org`, `user add --org`: the real
//! binary on a data directory, and the single-tenant look of every other
//! command until a second organisation exists.
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

use std::path::Path;
use std::process::Stdio;

use tailmon_testkit::clean_command;

use crate::auth_binary::command;
use crate::server_process::scratch_dir;

/// `auth.json` as main's binary wrote it before organisations existed.
const FILE_FROM_MAIN: &str =
    include_str!("../../../../crates/tailmon-server/tests/fixtures/auth-v1.json");

/// Runs a command that must fail; returns its standard error.
fn refused(data_dir: &Path, args: &[&str]) -> String {
    let output = clean_command(env!("CARGO_BIN_EXE_tailmon-server"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success(), "{args:?} should fail");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn a_file_from_before_organisations_lists_exactly_as_main_did() {
    let data = scratch_dir("orgs-main").join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("auth.json"), FILE_FROM_MAIN).unwrap();
    // What main's binary printed for this file.
    assert_eq!(
        command(&data, &["token", "list"], ""),
        "ID                 KIND   DEVICES              CREATED    NAME\n\
         7a86bfe6fc30e5bd   agent  web-*                2026-11-28 web\n\
         e69a2bf15d0c84cf   read   *                    2026-11-28 scripts\n"
    );
    assert_eq!(
        command(&data, &["user", "list"], ""),
        "USERNAME                 ROLE    CREATED\n\
         admin                    admin 2026-11-28\n\
         ann                      viewer 2026-11-28\n\
         bob                      admin 2026-11-28\n"
    );
    assert_eq!(
        command(&data, &["org", "list"], ""),
        "NAME                     CREATED    TOKENS MEMBERS LIMITS\n\
         default                  2026-11-28      2       3 -\n"
    );
}

#[test]
fn single_tenant_commands_never_mention_organisations() {
    let data = scratch_dir("orgs-single").join("data");
    let mut out = command(
        &data,
        &["user", "add", "ann", "--role", "admin"],
        "ann-password-1\n",
    );
    out += &command(
        &data,
        &["user", "add", "bob", "--org", "default"],
        "bob-password-1\n",
    );
    out += &command(&data, &["token", "create", "--device", "web-*"], "");
    out += &command(
        &data,
        &["token", "create", "--read-only", "--org", "default"],
        "",
    );
    out += &command(&data, &["token", "list"], "");
    out += &command(&data, &["user", "role", "bob", "admin"], "");
    out += &command(&data, &["user", "list"], "");
    assert!(
        !out.to_lowercase().contains("org"),
        "organisations shown with only one:\n{out}"
    );
    assert!(out.contains("added admin ann\nadded viewer bob\n"), "{out}");
    assert!(
        out.contains("bob is now admin; their sessions have ended"),
        "{out}"
    );
}

#[test]
fn organisations_from_the_command_line() {
    let data = scratch_dir("orgs-cli").join("data");
    command(
        &data,
        &["user", "add", "ann", "--role", "admin"],
        "ann-password-1\n",
    );
    let out = command(&data, &["org", "create", "acme", "--admin", "ann"], "");
    assert_eq!(out, "created organisation acme, with admin ann\n");
    let out = command(&data, &["org", "create", "beta"], "");
    assert!(
        out.contains("user add USER --org beta --role admin"),
        "{out}"
    );

    // A new user straight into acme; an existing one joins beta, no password asked.
    assert_eq!(
        command(
            &data,
            &["user", "add", "bob", "--org", "acme", "--role", "viewer"],
            "bob-password-1\n"
        ),
        "added viewer bob in organisation acme\n"
    );
    assert_eq!(
        command(
            &data,
            &["user", "add", "ann", "--org", "beta", "--role", "viewer"],
            ""
        ),
        "ann is now viewer of organisation beta\n"
    );
    let users = command(&data, &["user", "list"], "");
    assert_eq!(
        users
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["USERNAME", "OWNER", "CREATED", "ORGANISATIONS"]
    );
    let ann = users.lines().find(|l| l.starts_with("ann ")).unwrap();
    assert!(
        ann.contains(" yes ") && ann.ends_with("acme:admin beta:viewer default:admin"),
        "{users}"
    );
    let bob = users.lines().find(|l| l.starts_with("bob ")).unwrap();
    assert!(
        bob.ends_with(" acme:viewer") && !bob.contains("yes"),
        "{users}"
    );

    // Tokens in organisations, listed with theirs.
    let out = command(
        &data,
        &["token", "create", "--org", "acme", "--name", "acme agents"],
        "",
    );
    assert!(
        out.contains("for any device in organisation acme;"),
        "{out}"
    );
    command(&data, &["token", "create", "--name", "ours"], "");
    let tokens = command(&data, &["token", "list"], "");
    let columns = |name: &str| -> Vec<String> {
        let line = tokens.lines().find(|l| l.ends_with(name)).unwrap();
        line.split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(
        tokens.lines().next().unwrap().split_whitespace().nth(1),
        Some("ORG")
    );
    assert_eq!(columns("acme agents")[1], "acme");
    assert_eq!(columns("ours")[1], "default");

    let orgs = command(&data, &["org", "list"], "");
    let row = |name: &str| -> Vec<String> {
        let line = orgs
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        line.split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(&row("acme")[2..], ["1", "2", "-"], "{orgs}");
    assert_eq!(&row("beta")[2..], ["0", "1", "-"], "{orgs}");
    assert_eq!(&row("default")[2..], ["1", "1", "-"], "{orgs}");

    // Refusals say why and change nothing.
    assert!(
        refused(&data, &["org", "remove", "default"])
            .contains("default organisation cannot be removed")
    );
    assert!(refused(&data, &["org", "create", "acme"]).contains("already exists"));
    assert!(
        refused(&data, &["org", "create", "two words"])
            .contains("organisation name \"two words\" must be")
    );
    assert!(
        refused(&data, &["org", "create", "gamma", "--admin", "nobody"])
            .contains("no user \"nobody\"")
    );
    assert!(
        refused(&data, &["token", "create", "--org", "nowhere"])
            .contains("no organisation \"nowhere\"")
    );
    assert!(refused(&data, &["org", "remove", "nowhere"]).contains("no organisation"));
    assert_eq!(command(&data, &["org", "list"], ""), orgs);

    // Removing acme takes its tokens and memberships; the users stay.
    assert_eq!(
        command(&data, &["org", "remove", "acme"], ""),
        "removed organisation acme with its 1 token(s) and 2 membership(s)\n"
    );
    let tokens = command(&data, &["token", "list"], "");
    assert!(
        !tokens.contains("acme agents") && tokens.contains("ours"),
        "{tokens}"
    );
    let users = command(&data, &["user", "list"], "");
    assert!(users.lines().any(|l| l.starts_with("bob ")), "{users}");
    assert!(!users.contains("acme"), "{users}");

    // Back to one organisation: the single-tenant look again.
    command(&data, &["org", "remove", "beta"], "");
    assert!(command(&data, &["token", "list"], "").starts_with("ID                 KIND "));
}

#[test]
fn limits_and_owners_from_the_command_line() {
    let data = scratch_dir("orgs-limits").join("data");
    command(
        &data,
        &["user", "add", "ann", "--role", "admin"],
        "ann-password-1\n",
    );
    command(
        &data,
        &["user", "add", "bob", "--role", "viewer"],
        "bob-password-1\n",
    );
    command(&data, &["org", "create", "acme"], "");
    assert_eq!(
        command(
            &data,
            &[
                "org",
                "limits",
                "acme",
                "--max-devices",
                "50",
                "--rate-limit-per-token",
                "5"
            ],
            ""
        ),
        "limits of organisation acme: devices 50, per token 5/s burst 50\n"
    );
    // Those not given stay; 0 lifts one.
    assert_eq!(
        command(
            &data,
            &[
                "org",
                "limits",
                "acme",
                "--max-devices",
                "0",
                "--rate-limit-per-address",
                "2"
            ],
            ""
        ),
        "limits of organisation acme: per address 2/s burst 20, per token 5/s burst 50\n"
    );
    let orgs = command(&data, &["org", "list"], "");
    let acme = orgs.lines().find(|l| l.starts_with("acme ")).unwrap();
    assert!(
        acme.ends_with(" per address 2/s burst 20, per token 5/s burst 50"),
        "{orgs}"
    );
    assert!(
        refused(&data, &["org", "limits", "nowhere", "--max-devices", "1"])
            .contains("no organisation \"nowhere\"")
    );

    // Owners: named, then taken back; the file says so.
    assert_eq!(
        command(&data, &["user", "owner", "bob"], ""),
        "bob is now an owner of the server\n"
    );
    let users = command(&data, &["user", "list"], "");
    let owner = |name: &str| {
        users
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap()
            .contains(" yes ")
    };
    assert!(
        owner("bob") && !owner("ann"),
        "once one is named, only them: {users}"
    );
    assert_eq!(
        command(&data, &["user", "owner", "bob", "--remove"], ""),
        "bob is no longer an owner of the server\n"
    );
    assert!(refused(&data, &["user", "owner", "nobody"]).contains("no user \"nobody\""));
}
