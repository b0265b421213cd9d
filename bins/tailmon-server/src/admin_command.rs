//! `tailmon-server token …` and `tailmon-server user …`: credentials
//! managed from the command line, beside a running server or not.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::{Context, bail};
use clap::Subcommand;
use tailmon_server::Credentials;
use tailmon_server::auth::{NewToken, Role, TokenKind};

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
    /// line of standard input when it is not a terminal.
    Add {
        /// The login name.
        name: String,
        /// `admin` or `viewer`.
        #[arg(long, default_value = "viewer")]
        role: Role,
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
    },
    /// Lists the users.
    List,
    /// Removes a user (not the last admin).
    Remove {
        /// The login name.
        name: String,
    },
}

/// Runs `command` on the credentials of `data_dir`.
pub(crate) fn run(command: AdminCommand, data_dir: &Path) -> anyhow::Result<()> {
    let credentials = Credentials::open(data_dir)
        .with_context(|| format!("opening the credentials in {}", data_dir.display()))?;
    match command {
        AdminCommand::Token { action } => token(&credentials, action),
        AdminCommand::User { action } => user(&credentials, action),
    }
}

fn token(credentials: &Credentials, action: TokenAction) -> anyhow::Result<()> {
    match action {
        TokenAction::Create {
            device,
            name,
            read_only,
            max_devices,
        } => {
            let mut new = if read_only {
                NewToken::read(name)
            } else {
                NewToken::agent(name)
            };
            if let Some(pattern) = device {
                new = new.device(pattern);
            }
            if let Some(devices) = max_devices {
                new = new.max_devices(devices);
            }
            let created = credentials.create_token(new)?;
            let info = &created.info;
            println!(
                "created {} token {} for {}; give it to the agent as TAILMON_TOKEN (it is not shown again):",
                if read_only { "read-only" } else { "agent" },
                info.id,
                info.device
                    .as_deref()
                    .map_or("any device".to_owned(), |p| format!("devices {p}"))
            );
            println!("{}", created.token);
        }
        TokenAction::List => {
            println!(
                "{:<18} {:<6} {:<20} {:<10} NAME",
                "ID", "KIND", "DEVICES", "CREATED"
            );
            for t in credentials.tokens() {
                println!(
                    "{:<18} {:<6} {:<20} {:<10} {}",
                    t.id,
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
        UserAction::Add { name, role } => {
            let password = read_password()?;
            credentials.add_user(&name, &password, role)?;
            println!("added {role} {name}");
        }
        UserAction::Passwd { name } => {
            let password = read_password()?;
            if !credentials.set_password(&name, &password)? {
                bail!("no user {name:?}");
            }
            println!("password of {name} changed; their sessions have ended");
        }
        UserAction::Role { name, role } => {
            if !credentials.set_role(&name, role)? {
                bail!("no user {name:?}");
            }
            println!("{name} is now {role}; their sessions have ended");
        }
        UserAction::List => {
            println!("{:<24} {:<7} CREATED", "USERNAME", "ROLE");
            for u in credentials.users() {
                println!("{:<24} {:<7} {}", u.username, u.role, u.created_at.date());
            }
        }
        UserAction::Remove { name } => {
            if !credentials.remove_user(&name)? {
                bail!("no user {name:?}");
            }
            println!("removed {name}; their sessions have ended");
        }
    }
    Ok(())
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
