//! `tailmon-server token …`, `user …` and `org …`: credentials and
//! organisations managed from the command line, beside a running server
//! or not. Until a second organisation exists, nothing printed mentions
//! organisations.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::{Context, bail};
use clap::Subcommand;
use tailmon_server::Credentials;
use tailmon_server::auth::{NewToken, OrgId, OrgLimits, RateLimit, Role, TokenKind};

/// Managing who may use the server.
#[derive(Subcommand, Debug)]
pub(crate) enum AdminCommand {
    /// Agent and API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// People who sign in to the dashboard.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Organisations: tenants that share nothing (docs/organisations.md).
    Org {
        #[command(subcommand)]
        action: OrgAction,
    },
}

/// What to do with tokens.
#[derive(Subcommand, Debug)]
pub(crate) enum TokenAction {
    /// Creates a token and prints it (alone on the last line). Only its
    /// hash is kept: it cannot be shown again.
    Create {
        /// Device ids the token may write: `*` matches any run of
        /// characters, `?` one (e.g. `web-*`). Any device when left out.
        #[arg(long)]
        device: Option<String>,
        /// A name to recognise the token by.
        #[arg(long, default_value = "")]
        name: String,
        /// A read-only token for scripts (reads what a viewer reads, sends
        /// no reports) instead of an agent token.
        #[arg(long)]
        read_only: bool,
        /// Most distinct devices the token may write (the server's
        /// `--max-devices-per-token` when left out).
        #[arg(long)]
        max_devices: Option<usize>,
        /// The organisation the token reads or writes in.
        #[arg(long, default_value_t = OrgId::default())]
        org: OrgId,
    },
    /// Lists the tokens (never their secrets).
    List,
    /// Revokes a token: refused from the next request on.
    Revoke {
        /// The token's id, as `token list` shows it.
        id: String,
    },
}

/// What to do with users.
#[derive(Subcommand, Debug)]
pub(crate) enum UserAction {
    /// Adds a user; the password is read from a prompt, or from the first
    /// line of standard input when it is not a terminal. With `--org`, an
    /// existing user joins that organisation (no password asked).
    Add {
        /// The login name.
        name: String,
        /// `admin` or `viewer`.
        #[arg(long, default_value = "viewer")]
        role: Role,
        /// The organisation they belong to.
        #[arg(long)]
        org: Option<OrgId>,
    },
    /// Sets a user's password (read as for `add`); their sessions end.
    Passwd {
        /// The login name.
        name: String,
    },
    /// Sets a user's role (not the last admin's); their sessions end.
    Role {
        /// The login name.
        name: String,
        /// `admin` or `viewer`.
        role: Role,
        /// The organisation where the role changes.
        #[arg(long, default_value_t = OrgId::default())]
        org: OrgId,
    },
    /// Lists the users.
    List,
    /// Makes a user an owner of the server (creates and removes
    /// organisations, sets their limits), or not with `--remove`. While
    /// nobody is named owner, every admin of `default` is one.
    Owner {
        /// The login name.
        name: String,
        /// Takes the owner flag away instead.
        #[arg(long)]
        remove: bool,
    },
    /// Removes a user (not the last admin); with `--org`, from that
    /// organisation only.
    Remove {
        /// The login name.
        name: String,
        /// The organisation to take them out of.
        #[arg(long)]
        org: Option<OrgId>,
    },
}

/// What to do with organisations.
#[derive(Subcommand, Debug)]
pub(crate) enum OrgAction {
    /// Creates an organisation.
    Create {
        /// Its name: letters, digits and . _ - : (at most 128).
        name: OrgId,
        /// An existing user who becomes its first admin.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Lists the organisations, with their limits.
    List,
    /// Sets an organisation's own limits; those not given stay as they
    /// are, 0 lifts one (the server's setting then applies alone).
    Limits {
        /// Its name.
        name: OrgId,
        /// Most devices it may have.
        #[arg(long)]
        max_devices: Option<usize>,
        /// Requests a second allowed per token of the organisation, with
        /// bursts of ten times as many (in place of the server's
        /// `--rate-limit-per-token`).
        #[arg(long)]
        rate_limit_per_token: Option<u32>,
        /// Requests a second allowed per client address to the
        /// organisation, with bursts of ten times as many (besides the
        /// server's `--rate-limit-per-address`).
        #[arg(long)]
        rate_limit_per_address: Option<u32>,
    },
    /// Removes an organisation with its tokens and memberships (not
    /// `default`).
    Remove {
        /// Its name.
        name: OrgId,
    },
}

/// Runs `command` on the credentials of `data_dir`.
pub(crate) fn run(command: AdminCommand, data_dir: &Path) -> anyhow::Result<()> {
    let credentials = Credentials::open(data_dir)
        .with_context(|| format!("opening the credentials in {}", data_dir.display()))?;
    match command {
        AdminCommand::Token { action } => token(&credentials, action),
        AdminCommand::User { action } => user(&credentials, action),
        AdminCommand::Org { action } => org(&credentials, action),
    }
}

/// Whether output should name organisations: once a second one exists.
fn several_orgs(credentials: &Credentials) -> bool {
    credentials.org_count() > 1
}

fn token(credentials: &Credentials, action: TokenAction) -> anyhow::Result<()> {
    match action {
        TokenAction::Create {
            device,
            name,
            read_only,
            max_devices,
            org,
        } => {
            let mut new = if read_only {
                NewToken::read(name)
            } else {
                NewToken::agent(name)
            }
            .org(org);
            if let Some(pattern) = device {
                new = new.device(pattern);
            }
            if let Some(devices) = max_devices {
                new = new.max_devices(devices);
            }
            let created = credentials.create_token(new)?;
            let info = &created.info;
            let in_org = if several_orgs(credentials) {
                format!(" in organisation {}", info.org)
            } else {
                String::new()
            };
            println!(
                "created {} token {} for {}{in_org}; give it to the agent as TAILMON_TOKEN (it is not shown again):",
                if read_only { "read-only" } else { "agent" },
                info.id,
                info.device
                    .as_deref()
                    .map_or("any device".to_owned(), |p| format!("devices {p}"))
            );
            println!("{}", created.token);
        }
        TokenAction::List => {
            let orgs = several_orgs(credentials);
            let org_column = |org: &str| {
                if orgs {
                    format!("{org:<16} ")
                } else {
                    String::new()
                }
            };
            println!(
                "{:<18} {}{:<6} {:<20} {:<10} NAME",
                "ID",
                org_column("ORG"),
                "KIND",
                "DEVICES",
                "CREATED"
            );
            for t in credentials.tokens() {
                println!(
                    "{:<18} {}{:<6} {:<20} {:<10} {}",
                    t.id,
                    org_column(t.org.as_str()),
                    match t.kind {
                        TokenKind::Agent => "agent",
                        TokenKind::Read => "read",
                    },
                    t.device.as_deref().unwrap_or("*"),
                    t.created_at.date(),
                    t.name
                );
            }
        }
        TokenAction::Revoke { id } => {
            if !credentials.revoke_token(&id)? {
                bail!("no token with id {id:?} (see `tailmon-server token list`)");
            }
            println!("revoked token {id}");
        }
    }
    Ok(())
}

fn user(credentials: &Credentials, action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::Add { name, role, org } => {
            let exists = credentials.all_users().iter().any(|u| u.username == name);
            match org {
                Some(org) if exists => {
                    if credentials.role_in(&name, &org).is_some() {
                        bail!("{name} is already in organisation {org} (see `user role`)");
                    }
                    credentials.set_membership(&name, &org, role)?;
                    println!("{name} is now {role} of organisation {org}");
                }
                org => {
                    let org = org.unwrap_or_default();
                    let password = read_password()?;
                    credentials.add_user_in(&name, &password, &org, role)?;
                    if several_orgs(credentials) {
                        println!("added {role} {name} in organisation {org}");
                    } else {
                        println!("added {role} {name}");
                    }
                }
            }
        }
        UserAction::Passwd { name } => {
            let password = read_password()?;
            if !credentials.set_password(&name, &password)? {
                bail!("no user {name:?}");
            }
            println!("password of {name} changed; their sessions have ended");
        }
        UserAction::Role { name, role, org } => {
            if !credentials.set_membership(&name, &org, role)? {
                bail!("no user {name:?}");
            }
            if several_orgs(credentials) {
                println!("{name} is now {role} of organisation {org}; their sessions have ended");
            } else {
                println!("{name} is now {role}; their sessions have ended");
            }
        }
        UserAction::Owner { name, remove } => {
            if !credentials.set_owner(&name, !remove)? {
                bail!("no user {name:?}");
            }
            if remove {
                println!("{name} is no longer an owner of the server");
            } else {
                println!("{name} is now an owner of the server");
            }
        }
        UserAction::List => {
            if several_orgs(credentials) {
                println!(
                    "{:<24} {:<5} {:<10} ORGANISATIONS",
                    "USERNAME", "OWNER", "CREATED"
                );
                for u in credentials.all_users() {
                    let orgs: Vec<String> = u
                        .memberships
                        .iter()
                        .map(|(org, role)| format!("{org}:{role}"))
                        .collect();
                    println!(
                        "{:<24} {:<5} {:<10} {}",
                        u.username,
                        if u.owner { "yes" } else { "" },
                        u.created_at.date(),
                        orgs.join(" ")
                    );
                }
            } else {
                println!("{:<24} {:<7} CREATED", "USERNAME", "ROLE");
                for u in credentials.users() {
                    println!("{:<24} {:<7} {}", u.username, u.role, u.created_at.date());
                }
            }
        }
        UserAction::Remove {
            name,
            org: Some(org),
        } => {
            if !credentials.remove_membership(&name, &org)? {
                bail!("{name:?} is not in organisation {org}");
            }
            println!("took {name} out of organisation {org}; their sessions have ended");
        }
        UserAction::Remove { name, org: None } => {
            if !credentials.remove_user(&name)? {
                bail!("no user {name:?}");
            }
            println!("removed {name}; their sessions have ended");
        }
    }
    Ok(())
}

fn org(credentials: &Credentials, action: OrgAction) -> anyhow::Result<()> {
    match action {
        OrgAction::Create { name, admin } => {
            credentials.create_org(&name, admin.as_deref())?;
            match admin {
                Some(admin) => println!("created organisation {name}, with admin {admin}"),
                None => println!(
                    "created organisation {name}; name its first admin with \
                     `tailmon-server user add USER --org {name} --role admin`"
                ),
            }
        }
        OrgAction::Limits {
            name,
            max_devices,
            rate_limit_per_token,
            rate_limit_per_address,
        } => {
            let Some(org) = credentials.organisation(&name) else {
                bail!("no organisation {name:?} (see `tailmon-server org list`)");
            };
            let mut limits = org.limits;
            if let Some(devices) = max_devices {
                limits.max_devices = (devices > 0).then_some(devices);
            }
            if let Some(per_second) = rate_limit_per_token {
                limits.rate_limit_per_token = per_second_limit(per_second);
            }
            if let Some(per_second) = rate_limit_per_address {
                limits.rate_limit_per_address = per_second_limit(per_second);
            }
            if !credentials.set_org_limits(&name, limits)? {
                bail!("no organisation {name:?} (see `tailmon-server org list`)");
            }
            println!(
                "limits of organisation {name}: {}",
                describe_limits(&limits)
            );
        }
        OrgAction::List => {
            let tokens = credentials.tokens();
            let users = credentials.all_users();
            println!(
                "{:<24} {:<10} {:>6} {:>7} LIMITS",
                "NAME", "CREATED", "TOKENS", "MEMBERS"
            );
            for org in credentials.organisations() {
                println!(
                    "{:<24} {:<10} {:>6} {:>7} {}",
                    org.name.as_str(),
                    org.created_at.date(),
                    tokens.iter().filter(|t| t.org == org.name).count(),
                    users
                        .iter()
                        .filter(|u| u.memberships.contains_key(&org.name))
                        .count(),
                    describe_limits(&org.limits)
                );
            }
        }
        OrgAction::Remove { name } => {
            let tokens = credentials.tokens_in(&name).len();
            let members = credentials.users_in(&name).len();
            if !credentials.remove_org(&name)? {
                bail!("no organisation {name:?} (see `tailmon-server org list`)");
            }
            println!(
                "removed organisation {name} with its {tokens} token(s) and {members} membership(s)"
            );
            eprintln!(
                "note: the server keeps {name}'s devices, their history and its alerting, out of \
                 everybody's sight; `org create {name}` would find them again. To remove an \
                 organisation with its data, use the owner's API: DELETE /api/v1/organisations/{name}"
            );
        }
    }
    Ok(())
}

/// `per_second` requests a second with bursts of ten times as many, as
/// the server's own rate-limit flags; 0: none.
fn per_second_limit(per_second: u32) -> Option<RateLimit> {
    RateLimit::new(per_second, per_second.saturating_mul(10))
}

/// An organisation's limits as `org list` shows them; `-` for none.
fn describe_limits(limits: &OrgLimits) -> String {
    let mut shown = Vec::new();
    if let Some(devices) = limits.max_devices {
        shown.push(format!("devices {devices}"));
    }
    if let Some(limit) = limits.rate_limit_per_address {
        shown.push(format!(
            "per address {}/s burst {}",
            limit.per_second, limit.burst
        ));
    }
    if let Some(limit) = limits.rate_limit_per_token {
        shown.push(format!(
            "per token {}/s burst {}",
            limit.per_second, limit.burst
        ));
    }
    if shown.is_empty() {
        "-".to_owned()
    } else {
        shown.join(", ")
    }
}

/// From a prompt (asked twice) on a terminal, else the first line of stdin.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        if first != again {
            bail!("the two passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
