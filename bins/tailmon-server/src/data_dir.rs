//! Where the server keeps its state when `--data-dir` (`TAILMON_DATA_DIR`)
//! is not given.
//!
//! In order, the first that works:
//! 1. `$STATE_DIRECTORY`, which systemd sets for a unit with
//!    `StateDirectory=` (the first, if it lists several);
//! 2. `./tailmon-data` in the working directory, if it is there or can be
//!    made (what a user trying the server from a shell expects);
//! 3. a per-user state directory: `$XDG_STATE_HOME/tailmon`, or
//!    `~/.local/state/tailmon` (what a service without a data directory of
//!    its own, started in `/`, gets).
//!
//! When none works the server stops with one error that names every place
//! tried and the fix (`--data-dir`), rather than failing on a path that
//! says nothing (`./tailmon-data` in `/` under a service manager, which
//! restarts it again and again).
//!
//! Also here: [`check_admin_user`], which keeps root's admin commands from
//! leaving files the service's own user cannot read.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The directory, in the working directory, used when nothing else says
/// where the data goes.
pub(crate) const WORKING_DIRECTORY_DATA_DIR: &str = "tailmon-data";

/// The directory under a per-user state directory (`$XDG_STATE_HOME`).
const USER_STATE_SUBDIR: &str = "tailmon";

/// What the choice depends on: the process's environment, passed in so
/// that tests need not change the real one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Environment {
    /// `$STATE_DIRECTORY` (colon-separated absolute paths, set by systemd).
    pub(crate) state_directory: Option<OsString>,
    /// `$XDG_STATE_HOME`.
    pub(crate) xdg_state_home: Option<OsString>,
    /// `$HOME`.
    pub(crate) home: Option<OsString>,
    /// The working directory, when it can be read.
    pub(crate) current_dir: Option<PathBuf>,
}

impl Environment {
    /// This process's environment.
    pub(crate) fn of_this_process() -> Self {
        Self {
            state_directory: std::env::var_os("STATE_DIRECTORY"),
            xdg_state_home: std::env::var_os("XDG_STATE_HOME"),
            home: std::env::var_os("HOME"),
            current_dir: std::env::current_dir().ok(),
        }
    }
}

/// Where the choice came from, for the start-up log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `--data-dir` or `TAILMON_DATA_DIR`.
    Given,
    /// systemd's `$STATE_DIRECTORY`.
    SystemdStateDirectory,
    /// `./tailmon-data`.
    WorkingDirectory,
    /// `$XDG_STATE_HOME/tailmon` or `~/.local/state/tailmon`.
    UserState,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Given => "--data-dir",
            Self::SystemdStateDirectory => "$STATE_DIRECTORY",
            Self::WorkingDirectory => "the working directory",
            Self::UserState => "the user's state directory",
        })
    }
}

/// The data directory chosen, as an absolute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataDir {
    /// The directory (absolute unless the working directory is unknown).
    pub(crate) path: PathBuf,
    /// Why this one.
    pub(crate) source: Source,
}

/// No place for the data: each place tried, and why it failed.
#[derive(Debug)]
pub(crate) struct NoDataDir {
    /// The places tried, each with what went wrong.
    pub(crate) tried: Vec<(PathBuf, String)>,
}

impl fmt::Display for NoDataDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no data directory: --data-dir (TAILMON_DATA_DIR) is not set, and ")?;
        if self.tried.is_empty() {
            f.write_str("neither the working directory nor $HOME is known")?;
        } else {
            f.write_str("none of these could be made: ")?;
            for (i, (path, why)) in self.tried.iter().enumerate() {
                let sep = if i == 0 { "" } else { "; " };
                write!(f, "{sep}{}: {why}", path.display())?;
            }
        }
        f.write_str(
            ". Start the server with --data-dir DIR (or TAILMON_DATA_DIR=DIR) naming a directory \
             its user may write; under systemd, StateDirectory=tailmon makes /var/lib/tailmon for it",
        )
    }
}

impl std::error::Error for NoDataDir {}

/// The data directory: `given` (made absolute) if there is one, else the
/// first of the places in the module's documentation that exists as a
/// directory or can be made (made with mode 0700 when it is).
pub(crate) fn choose(given: Option<&Path>, env: &Environment) -> Result<DataDir, NoDataDir> {
    let absolute = |path: &Path| match &env.current_dir {
        Some(cwd) => cwd.join(path),
        None => path.to_path_buf(),
    };
    if let Some(path) = given {
        return Ok(DataDir {
            path: absolute(path),
            source: Source::Given,
        });
    }
    let mut candidates = Vec::new();
    if let Some(first) = env
        .state_directory
        .as_deref()
        .and_then(|dirs| std::env::split_paths(dirs).find(|p| !p.as_os_str().is_empty()))
    {
        candidates.push((absolute(&first), Source::SystemdStateDirectory));
    }
    if let Some(cwd) = &env.current_dir {
        candidates.push((
            cwd.join(WORKING_DIRECTORY_DATA_DIR),
            Source::WorkingDirectory,
        ));
    }
    let xdg = env
        .xdg_state_home
        .as_deref()
        .filter(|dir| Path::new(dir).is_absolute())
        .map(PathBuf::from);
    let home_state = env
        .home
        .as_deref()
        .filter(|dir| Path::new(dir).is_absolute())
        .map(|home| Path::new(home).join(".local/state"));
    if let Some(state_home) = xdg.or(home_state) {
        candidates.push((state_home.join(USER_STATE_SUBDIR), Source::UserState));
    }
    let mut tried = Vec::new();
    for (path, source) in candidates {
        match make_private_dir(&path) {
            Ok(()) => return Ok(DataDir { path, source }),
            Err(error) => tried.push((path, error.to_string())),
        }
    }
    Err(NoDataDir { tried })
}

/// Makes `dir` and its missing parents, `dir` itself with mode 0700; an
/// existing directory is fine as it is.
fn make_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(std::io::Error::other("there is a file of that name"));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Refuses an admin command run by root on a data directory another user
/// owns (the service's, e.g. `tailmon`): the files it would rewrite, such
/// as `auth.json`, would then belong to root, and the service could no
/// longer read them. The error says whom to run it as.
pub(crate) fn check_admin_user(dir: &Path) -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        // This process's effective user owns its /proc entry.
        let (Ok(me), Ok(meta)) = (std::fs::metadata("/proc/self"), std::fs::metadata(dir)) else {
            return Ok(());
        };
        if me.uid() == 0 && meta.uid() != 0 {
            let owner = user_name(meta.uid()).unwrap_or_else(|| format!("#{}", meta.uid()));
            anyhow::bail!(
                "{} belongs to {owner}: run this as that user (sudo -u '{owner}' tailmon-server ...), \
                 not as root, or the files it writes there will be root's and the server will not read them",
                dir.display()
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
    Ok(())
}

/// The name /etc/passwd gives `uid`.
#[cfg(target_os = "linux")]
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse() == Ok(uid)).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tailmon-data-dir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// A path no process may make a directory at, whoever runs the tests
    /// (root too): one under a plain file.
    fn under_a_file(base: &Path) -> PathBuf {
        let file = base.join("a-file");
        std::fs::write(&file, b"x").expect("write");
        file.join("below")
    }

    #[test]
    fn a_given_directory_wins_and_is_made_absolute() {
        let base = scratch("given");
        let env = Environment {
            state_directory: Some(base.join("state").into()),
            current_dir: Some(base.clone()),
            ..Environment::default()
        };
        let chosen = choose(Some(Path::new("mine")), &env).expect("given");
        assert_eq!(chosen.path, base.join("mine"));
        assert_eq!(chosen.source, Source::Given);
        assert!(!base.join("mine").exists(), "the store makes it, not this");
    }

    #[test]
    fn systemd_state_directory_comes_first() {
        let base = scratch("systemd");
        let first = base.join("var-lib-tailmon");
        let mut list = OsString::from(&first);
        list.push(":");
        list.push(base.join("second"));
        let env = Environment {
            state_directory: Some(list),
            current_dir: Some(base.clone()),
            home: Some(base.join("home").into()),
            ..Environment::default()
        };
        let chosen = choose(None, &env).expect("state directory");
        assert_eq!(chosen.path, first);
        assert_eq!(chosen.source, Source::SystemdStateDirectory);
        assert!(first.is_dir());
        assert!(!base.join("tailmon-data").exists());
    }

    #[test]
    fn the_working_directory_when_it_is_writable() {
        let base = scratch("cwd");
        let env = Environment {
            current_dir: Some(base.clone()),
            xdg_state_home: Some(base.join("xdg").into()),
            ..Environment::default()
        };
        let chosen = choose(None, &env).expect("cwd");
        assert_eq!(chosen.path, base.join("tailmon-data"));
        assert_eq!(chosen.source, Source::WorkingDirectory);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&chosen.path)
                .expect("made")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn a_service_in_an_unwritable_directory_gets_the_user_state_directory() {
        let base = scratch("xdg");
        let cwd = under_a_file(&base);
        // XDG_STATE_HOME first, then ~/.local/state.
        let env = Environment {
            current_dir: Some(cwd.clone()),
            xdg_state_home: Some(base.join("xdg").into()),
            home: Some(base.join("home").into()),
            ..Environment::default()
        };
        let chosen = choose(None, &env).expect("xdg");
        assert_eq!(chosen.path, base.join("xdg/tailmon"));
        assert_eq!(chosen.source, Source::UserState);
        let env = Environment {
            xdg_state_home: Some("relative/is/ignored".into()),
            ..env
        };
        let chosen = choose(None, &env).expect("home");
        assert_eq!(chosen.path, base.join("home/.local/state/tailmon"));
        assert!(chosen.path.is_dir());
    }

    #[test]
    fn nowhere_to_write_is_one_error_naming_each_place_and_the_fix() {
        let base = scratch("nowhere");
        let cwd = under_a_file(&base);
        let env = Environment {
            current_dir: Some(cwd.clone()),
            home: Some(cwd.join("home").into()),
            ..Environment::default()
        };
        let error = choose(None, &env).expect_err("nowhere").to_string();
        assert!(
            error.contains(&format!("{}: ", cwd.join("tailmon-data").display())),
            "{error}"
        );
        assert!(
            error.contains(&format!(
                "{}: ",
                cwd.join("home/.local/state/tailmon").display()
            )),
            "{error}"
        );
        assert!(error.contains("--data-dir DIR"), "{error}");
        assert!(error.contains("StateDirectory=tailmon"), "{error}");
        assert!(!error.contains('\n'), "one line: {error}");
    }
}
