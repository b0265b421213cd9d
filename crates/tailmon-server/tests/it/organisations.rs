//! Organisations in the credentials: a file written before them, creating
//! and removing them, tokens and members in them, owners and limits.

use std::path::PathBuf;

use tailmon_server::auth::{
    Credentials, CredentialsError, NewToken, OrgId, OrgLimits, RateLimit, Role, TokenKind,
};

/// `auth.json` as `tailmon-server token create` and `user add` of main at
/// e53a6ea wrote it: two tokens, admins `admin` and `bob`, viewer `ann`.
const FILE_FROM_MAIN: &str = include_str!("../fixtures/auth-v1.json");
/// The whole tokens of that file (test fixtures, nothing else uses them).
const WEB_TOKEN: &str = "tmn_7a86bfe6fc30e5bd_1aad5e584044bb4d3b3076eebf662ba5cb72dbde87bfeec4";
const SCRIPTS_TOKEN: &str = "tmn_e69a2bf15d0c84cf_9937f7275e02f3fe7649f3b64faf0cb71b6a01627cebf52a";

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tailmon-orgs-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn acme() -> OrgId {
    OrgId::new("acme").unwrap()
}

fn from_main() -> (PathBuf, Credentials) {
    let dir = scratch();
    std::fs::write(dir.join("auth.json"), FILE_FROM_MAIN).unwrap();
    let credentials = Credentials::open(&dir).unwrap();
    (dir, credentials)
}

#[test]
fn a_file_written_before_organisations_loads_into_default() {
    let (dir, credentials) = from_main();
    let orgs = credentials.organisations();
    assert_eq!(orgs.len(), 1);
    assert!(orgs[0].name.is_default());
    assert_eq!(orgs[0].limits, OrgLimits::none());
    // `default` dates from the file's first token.
    assert_eq!(
        orgs[0].created_at,
        credentials
            .tokens()
            .iter()
            .map(|t| t.created_at)
            .min()
            .unwrap()
    );

    let web = credentials.verify_token(WEB_TOKEN).unwrap();
    assert_eq!(
        (
            web.name.as_str(),
            web.kind,
            web.device.as_deref(),
            web.max_devices
        ),
        ("web", TokenKind::Agent, Some("web-*"), Some(5))
    );
    assert!(web.org.is_default());
    assert!(
        credentials
            .verify_token(SCRIPTS_TOKEN)
            .unwrap()
            .org
            .is_default()
    );

    assert_eq!(
        credentials.verify_password("admin", "admin-password-1"),
        Some(Role::Admin)
    );
    assert_eq!(
        credentials.verify_password("ann", "ann-password-12"),
        Some(Role::Viewer)
    );
    let users = credentials.users();
    assert_eq!(
        users
            .iter()
            .map(|u| (u.username.as_str(), u.role, u.owner))
            .collect::<Vec<_>>(),
        [
            ("admin", Role::Admin, true),
            ("ann", Role::Viewer, false),
            ("bob", Role::Admin, true)
        ],
        "every admin of the old file owns the server"
    );

    // Read again unchanged: the same answer (nothing drawn at read time).
    assert!(!credentials.reload().unwrap());

    // The next change writes version 2, which reads back the same.
    credentials.create_org(&acme(), Some("ann")).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("auth.json")).unwrap()).unwrap();
    assert_eq!(written["version"], 2);
    assert_eq!(written["users"]["ann"]["memberships"]["acme"], "admin");
    assert_eq!(written["users"]["ann"]["memberships"]["default"], "viewer");
    assert!(written["users"]["ann"].get("role").is_none());
    assert!(
        written["tokens"][0].get("org").is_none(),
        "default is left out"
    );
    let again = Credentials::open(&dir).unwrap();
    assert_eq!(again.tokens(), credentials.tokens());
    assert_eq!(again.all_users(), credentials.all_users());
    assert_eq!(again.organisations(), credentials.organisations());
    assert_eq!(
        again.verify_password("bob", "bob-password-12"),
        Some(Role::Admin)
    );
}

#[test]
fn organisations_are_created_listed_limited_and_removed_with_their_tokens_and_members() {
    let credentials = Credentials::in_memory();
    credentials
        .add_user("ann", "correct horse", Role::Admin)
        .unwrap();
    credentials
        .add_user("cid", "correct horse", Role::Viewer)
        .unwrap();
    assert_eq!(credentials.org_count(), 1);

    credentials.create_org(&acme(), Some("cid")).unwrap();
    assert!(matches!(
        credentials.create_org(&acme(), None),
        Err(CredentialsError::OrgExists(_))
    ));
    assert!(matches!(
        credentials.create_org(&OrgId::new("other").unwrap(), Some("nobody")),
        Err(CredentialsError::NoSuchUser(_))
    ));
    assert_eq!(
        credentials.org_count(),
        2,
        "a refused creation leaves nothing"
    );
    assert_eq!(
        credentials
            .organisations()
            .iter()
            .map(|o| o.name.to_string())
            .collect::<Vec<_>>(),
        ["acme", "default"]
    );
    assert_eq!(credentials.role_in("cid", &acme()), Some(Role::Admin));
    assert_eq!(
        credentials.role("cid"),
        Some(Role::Viewer),
        "still a viewer of default"
    );

    let limits = OrgLimits::none()
        .max_devices(50)
        .rate_limit_per_token(RateLimit::new(10, 100).unwrap());
    assert!(credentials.set_org_limits(&acme(), limits).unwrap());
    assert_eq!(credentials.organisation(&acme()).unwrap().limits, limits);
    assert!(
        !credentials
            .set_org_limits(&OrgId::new("nowhere").unwrap(), limits)
            .unwrap()
    );

    let theirs = credentials
        .create_token(NewToken::agent("acme agents").org(acme()))
        .unwrap();
    let ours = credentials.create_token(NewToken::agent("ours")).unwrap();
    assert_eq!(credentials.verify_token(&theirs.token).unwrap().org, acme());
    assert!(
        credentials
            .verify_token(&ours.token)
            .unwrap()
            .org
            .is_default()
    );
    assert_eq!(
        credentials.tokens_in(&acme()),
        std::slice::from_ref(&theirs.info)
    );
    assert!(matches!(
        credentials.create_token(NewToken::read("x").org(OrgId::new("nowhere").unwrap())),
        Err(CredentialsError::NoSuchOrg(_))
    ));

    credentials
        .set_membership("ann", &acme(), Role::Viewer)
        .unwrap();
    assert_eq!(
        credentials
            .users_in(&acme())
            .iter()
            .map(|u| (u.username.as_str(), u.role))
            .collect::<Vec<_>>(),
        [("ann", Role::Viewer), ("cid", Role::Admin)]
    );
    // The last admin of acme stays.
    assert!(matches!(
        credentials.set_membership("cid", &acme(), Role::Viewer),
        Err(CredentialsError::LastAdmin)
    ));
    assert!(matches!(
        credentials.remove_user("cid"),
        Err(CredentialsError::LastAdmin)
    ));

    assert!(matches!(
        credentials.remove_org(&OrgId::default()),
        Err(CredentialsError::Invalid(_))
    ));
    assert!(credentials.remove_org(&acme()).unwrap());
    assert!(!credentials.remove_org(&acme()).unwrap());
    assert_eq!(
        credentials.verify_token(&theirs.token),
        None,
        "its tokens went with it"
    );
    assert!(credentials.verify_token(&ours.token).is_some());
    assert_eq!(credentials.role_in("cid", &acme()), None);
    assert_eq!(credentials.memberships("cid").len(), 1, "default is left");
    assert_eq!(credentials.org_count(), 1);
    // A name can be used again, starting empty.
    credentials.create_org(&acme(), None).unwrap();
    assert!(credentials.users_in(&acme()).is_empty());
    assert!(credentials.tokens_in(&acme()).is_empty());
}

#[test]
fn owners_are_flagged_else_the_admins_of_default() {
    let credentials = Credentials::in_memory();
    credentials
        .add_user("ann", "correct horse", Role::Admin)
        .unwrap();
    credentials
        .add_user("bob", "correct horse", Role::Admin)
        .unwrap();
    credentials
        .add_user("cid", "correct horse", Role::Viewer)
        .unwrap();
    assert!(credentials.is_owner("ann") && credentials.is_owner("bob"));
    assert!(!credentials.is_owner("cid"));
    assert!(credentials.set_owner("ann", true).unwrap());
    assert!(credentials.is_owner("ann"));
    assert!(
        !credentials.is_owner("bob"),
        "once one is flagged, only the flagged"
    );
    assert!(!credentials.set_owner("nobody", true).unwrap());
    credentials.remove_user("ann").unwrap();
    assert!(
        credentials.is_owner("bob"),
        "nobody flagged: the admins of default again"
    );
}

#[test]
fn a_user_in_no_organisation_cannot_sign_in() {
    let credentials = Credentials::in_memory();
    credentials
        .add_user("ann", "correct horse", Role::Admin)
        .unwrap();
    credentials
        .add_user("cid", "correct horse", Role::Viewer)
        .unwrap();
    credentials.create_org(&acme(), Some("cid")).unwrap();
    assert!(
        credentials
            .remove_membership("cid", &OrgId::default())
            .unwrap()
    );
    // Their only organisation: the password works, for acme.
    assert_eq!(
        credentials.verify_password("cid", "correct horse"),
        Some(Role::Admin)
    );
    credentials
        .add_user("dan", "correct horse", Role::Viewer)
        .unwrap();
    credentials
        .set_membership("dan", &acme(), Role::Admin)
        .unwrap();
    assert!(credentials.remove_org(&acme()).unwrap());
    assert_eq!(credentials.verify_password("cid", "correct horse"), None);
    assert_eq!(credentials.all_users().len(), 3, "the user is kept");
}
