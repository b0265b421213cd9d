//! One run of a plugin's command: no shell, no standard input, bounded
//! output, and every process it started killed once it is over.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::PluginConfig;

/// Most standard output read from one run: 64 KiB. A plugin that prints
/// more is stopped, and only the complete lines of the first 64 KiB are read.
pub const MAX_PLUGIN_STDOUT: usize = 64 * 1024;
/// Most standard error kept from one run, for the log: 4 KiB (the rest is
/// read and thrown away, so the plugin never blocks on it).
pub const MAX_PLUGIN_STDERR: usize = 4 * 1024;

/// How one run ended.
#[derive(Debug)]
pub(crate) struct PluginRun {
    /// Standard output (lossy UTF-8); cut to its complete lines when it was
    /// longer than [`MAX_PLUGIN_STDOUT`].
    pub(crate) stdout: String,
    /// Whether standard output was longer than [`MAX_PLUGIN_STDOUT`].
    pub(crate) stdout_cut: bool,
    /// The start of standard error, trimmed.
    pub(crate) stderr: String,
    pub(crate) ended: Ended,
}

/// How the process ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It exited with status 0.
    Success,
    /// It exited otherwise, or was killed by a signal.
    Failed(ExitStatus),
    /// It could not be started.
    NotStarted(std::io::Error),
    /// It ran longer than its timeout and was killed, with its process group.
    TimedOut(Duration),
    /// It printed more than [`MAX_PLUGIN_STDOUT`] and was killed.
    Chatty,
    /// Its output could not be read.
    Unreadable(std::io::Error),
}

/// Runs `config`'s command once, for at most [`PluginConfig::run_limit`].
/// Never fails: every way it can go wrong is in [`PluginRun::ended`].
pub(crate) async fn run_plugin(config: &PluginConfig) -> PluginRun {
    let mut run = PluginRun {
        stdout: String::new(),
        stdout_cut: false,
        stderr: String::new(),
        ended: Ended::Success,
    };
    let Some((program, args)) = config.command.split_first() else {
        run.ended = Ended::NotStarted(std::io::Error::other("no command"));
        return run;
    };
    let mut child = match plugin_command(program, args).spawn() {
        Ok(child) => child,
        Err(error) => {
            run.ended = Ended::NotStarted(error);
            return run;
        }
    };
    // Dropped last: kills whatever is left of the group, however the run ends.
    let group = ProcessGroup(child.id());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let limit = config.run_limit();
    let work = async {
        let out = async {
            let read = read_bounded(stdout, MAX_PLUGIN_STDOUT, false).await;
            if matches!(read, Ok((_, true))) {
                // Chatty: stop it now rather than read on until the timeout.
                group.kill();
            }
            read
        };
        let err = read_bounded(stderr, MAX_PLUGIN_STDERR, true);
        let (out, err) = tokio::join!(out, err);
        (out, err, child.wait().await)
    };
    match tokio::time::timeout(limit, work).await {
        Err(_) => run.ended = Ended::TimedOut(limit),
        Ok((out, err, status)) => {
            if let Ok((bytes, _)) = err {
                run.stderr = String::from_utf8_lossy(&bytes).trim().to_owned();
            }
            match (out, status) {
                (Err(error), _) | (_, Err(error)) => run.ended = Ended::Unreadable(error),
                (Ok((bytes, true)), _) => {
                    run.stdout_cut = true;
                    run.stdout = complete_lines(&bytes);
                    run.ended = Ended::Chatty;
                }
                (Ok((bytes, false)), Ok(status)) => {
                    run.stdout = String::from_utf8_lossy(&bytes).into_owned();
                    if !status.success() {
                        run.ended = Ended::Failed(status);
                    }
                }
            }
        }
    }
    drop(child);
    drop(group);
    run
}

/// Environment variables a plugin does not inherit from the agent: its
/// token.
pub(crate) const WITHHELD_ENV: [&str; 1] = ["TAILMON_TOKEN"];

/// The command of a run: `program` with `args`, no shell, standard input
/// empty, the agent's environment but for [`WITHHELD_ENV`], in a process
/// group of its own (so that a timeout kills what it started too), killed
/// if the run is dropped.
fn plugin_command(program: &str, args: &[String]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in WITHHELD_ENV {
        command.env_remove(name);
    }
    #[cfg(unix)]
    command.process_group(0);
    command
}

/// Reads at most `limit` bytes; `true` when there was more. With `drain`,
/// reads the rest to its end and throws it away; without, stops there.
async fn read_bounded(
    reader: Option<impl AsyncRead + Unpin>,
    limit: usize,
    drain: bool,
) -> std::io::Result<(Vec<u8>, bool)> {
    let Some(mut reader) = reader else {
        return Ok((Vec::new(), false));
    };
    let mut kept = Vec::new();
    (&mut reader)
        .take(limit as u64 + 1)
        .read_to_end(&mut kept)
        .await?;
    let more = kept.len() > limit;
    kept.truncate(limit);
    if more && drain {
        tokio::io::copy(&mut reader, &mut tokio::io::sink()).await?;
    }
    Ok((kept, more))
}

/// The complete lines of output that was cut: up to its last newline.
fn complete_lines(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A plugin's process group (its id is the plugin's process id), killed
/// with SIGKILL when dropped: grandchildren left behind die too.
struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    fn kill(&self) {
        #[cfg(unix)]
        if let Some(pid) = self
            .0
            .and_then(|id| i32::try_from(id).ok())
            // Never 1: kill(-1) would signal every process the agent may.
            .filter(|&id| id > 1)
            .and_then(rustix::process::Pid::from_raw)
        {
            // ESRCH once the whole group is gone: nothing left to do.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str) -> PluginConfig {
        PluginConfig::new("t", ["/bin/sh", "-c", script])
            .with_interval(Duration::from_secs(60))
            .with_timeout(Duration::from_secs(30))
    }

    #[tokio::test]
    async fn reads_stdout_and_stderr() {
        let run = run_plugin(&sh("echo 'a 1'; echo oops >&2")).await;
        assert!(matches!(run.ended, Ended::Success), "{:?}", run.ended);
        assert_eq!(run.stdout, "a 1\n");
        assert_eq!(run.stderr, "oops");
    }

    #[tokio::test]
    async fn no_shell_no_stdin() {
        // The arguments are not interpreted: `$HOME` stays as written.
        let run = run_plugin(&PluginConfig::new("t", ["/bin/echo", "$HOME", "|", "x"])).await;
        assert_eq!(run.stdout, "$HOME | x\n");
        // Standard input is empty: `cat` ends at once.
        let run = run_plugin(&PluginConfig::new("t", ["/bin/cat"])).await;
        assert!(matches!(run.ended, Ended::Success), "{:?}", run.ended);
        assert_eq!(run.stdout, "");
    }

    #[test]
    fn the_token_is_not_passed_on() {
        let command = plugin_command("/bin/true", &[]);
        let envs: Vec<_> = command.as_std().get_envs().collect();
        assert!(
            envs.contains(&(std::ffi::OsStr::new("TAILMON_TOKEN"), None)),
            "{envs:?}"
        );
    }

    #[tokio::test]
    async fn a_failing_or_missing_command_is_told() {
        let run = run_plugin(&sh("echo 'a 1'; echo 'no database' >&2; exit 3")).await;
        assert!(
            matches!(run.ended, Ended::Failed(status) if status.code() == Some(3)),
            "{:?}",
            run.ended
        );
        assert_eq!(run.stderr, "no database");
        let run = run_plugin(&PluginConfig::new("t", ["/nonexistent/plugin"])).await;
        assert!(matches!(run.ended, Ended::NotStarted(_)), "{:?}", run.ended);
    }

    #[tokio::test]
    async fn chatty_output_is_cut_to_complete_lines() {
        // Far more than 64 KiB, without end: `yes` never stops by itself.
        let run = run_plugin(&PluginConfig::new("t", ["/usr/bin/yes", "n 1"])).await;
        assert!(matches!(run.ended, Ended::Chatty), "{:?}", run.ended);
        assert!(run.stdout_cut);
        assert!(run.stdout.len() <= MAX_PLUGIN_STDOUT);
        assert!(run.stdout.len() > MAX_PLUGIN_STDOUT - 4);
        assert!(run.stdout.ends_with("n 1\n"));
        // Long standard error is drained, kept short, and blocks nothing.
        let run = run_plugin(&sh(
            "head -c 1000000 /dev/zero | tr '\\0' e >&2; echo 'a 1'",
        ))
        .await;
        assert!(matches!(run.ended, Ended::Success), "{:?}", run.ended);
        assert_eq!(run.stderr.len(), MAX_PLUGIN_STDERR);
        assert_eq!(run.stdout, "a 1\n");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = std::env::temp_dir().join(format!("tailmon-plugin-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pid_file = dir.join("grandchild.pid");
        // The grandchild keeps standard output open, so only killing the
        // group ends the run.
        let plugin = sh(&format!(
            "sleep 1000 & echo $! > {}; wait",
            pid_file.display()
        ))
        .with_timeout(Duration::from_secs(2));
        let run = run_plugin(&plugin).await;
        assert!(
            matches!(run.ended, Ended::TimedOut(t) if t == Duration::from_secs(2)),
            "{:?}",
            run.ended
        );
        let pid =
            std::fs::read_to_string(&pid_file).expect("the plugin wrote its grandchild's pid");
        let proc_dir = std::path::PathBuf::from(format!("/proc/{}", pid.trim()));
        // SIGKILL is sent before run_plugin returns; the kernel may take a
        // moment to tear the process down (a zombie until reaped by init).
        let gone = || {
            std::fs::read_to_string(proc_dir.join("stat"))
                .map_or(true, |stat| stat.contains(") Z ") || stat.contains(") X "))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !gone() {
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild {pid} still runs"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
