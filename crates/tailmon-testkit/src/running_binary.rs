//! A binary of this workspace running as a child process, with its output
//! captured as it comes and the process killed when the guard is dropped.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::eventually;

/// A running child process; killed (SIGKILL) and reaped on drop if still alive.
pub struct RunningBinary {
    child: Child,
    stdout: Captured,
    stderr: Captured,
}

/// Everything a process wrote to one stream so far, read by a thread.
struct Captured {
    text: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Captured {
    fn start(stream: impl Read + Send + 'static) -> Self {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&text);
        let reader = std::thread::spawn(move || {
            let mut lines = BufReader::new(stream);
            let mut line = String::new();
            // Ends at end of stream, i.e. when the process exits.
            while matches!(lines.read_line(&mut line), Ok(n) if n > 0) {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_str(&line);
                line.clear();
            }
        });
        Self {
            text,
            reader: Some(reader),
        }
    }

    fn snapshot(&self) -> String {
        self.text
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits for the reader to reach the end of the stream.
    fn finish(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// How a process ended, with everything it wrote.
#[derive(Debug)]
pub struct Finished {
    /// How the process exited.
    pub status: ExitStatus,
    /// Everything it wrote to standard output.
    pub stdout: String,
    /// Everything it wrote to standard error.
    pub stderr: String,
}

impl std::fmt::Debug for RunningBinary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningBinary")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl RunningBinary {
    /// Starts `command` with no stdin and both output streams captured.
    pub fn start(command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        let stdout = Captured::start(child.stdout.take().expect("stdout is piped"));
        let stderr = Captured::start(child.stderr.take().expect("stderr is piped"));
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.snapshot()
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.snapshot()
    }

    /// Waits until a line of stderr contains `needle`, and returns that line.
    pub async fn stderr_line_containing(&self, needle: &str) -> String {
        line_containing(&self.stderr, "stderr", needle).await
    }

    /// Waits until a line of stdout contains `needle`, and returns that line.
    pub async fn stdout_line_containing(&self, needle: &str) -> String {
        line_containing(&self.stdout, "stdout", needle).await
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident memory (`VmRSS` in `/proc/<pid>/status`),
    /// in bytes; `None` where there is no such file (not Linux) or the
    /// process is gone.
    pub fn resident_memory_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGKILL and reaps the process: a crash, with no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and checks the process stops cleanly: exit status 0,
    /// `farewell` in its log, no panic.
    pub async fn stop_cleanly(mut self, farewell: &str) {
        assert!(self.is_running(), "died early:\n{}", self.stderr());
        self.terminate();
        let finished = self.finished().await;
        assert!(
            finished.status.success(),
            "exit on SIGTERM should be 0, got {}; stderr:\n{}",
            finished.status,
            finished.stderr
        );
        assert!(finished.stderr.contains(farewell), "{}", finished.stderr);
        assert_no_panic(&finished.stderr);
    }

    /// Sends SIGTERM, as a service manager stopping the process would.
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill(1)");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Waits for the process to exit on its own and returns how it ended.
    pub async fn finished(mut self) -> Finished {
        let status = eventually("the process to exit", async || {
            match self.child.try_wait() {
                Ok(Some(status)) => Ok(status),
                Ok(None) => Err(format!(
                    "still running; stderr:\n{}",
                    self.stderr.snapshot()
                )),
                Err(e) => Err(format!("try_wait failed: {e}")),
            }
        })
        .await;
        self.stdout.finish();
        self.stderr.finish();
        Finished {
            status,
            stdout: self.stdout.snapshot(),
            stderr: self.stderr.snapshot(),
        }
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Waits until a line `stream` captured contains `needle`; that line.
async fn line_containing(stream: &Captured, name: &str, needle: &str) -> String {
    eventually(
        &format!("a {name} line containing {needle:?}"),
        async || {
            let text = stream.snapshot();
            match text.lines().find(|line| line.contains(needle)) {
                Some(line) => Ok(line.to_owned()),
                None => Err(format!("{name} so far:\n{text}")),
            }
        },
    )
    .await
}

/// A command for `program` whose environment holds no `TAILMON_*` variable of
/// the caller's and logs at `info`, so only what the test sets applies.
pub fn clean_command(program: &str) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TAILMON_") {
            command.env_remove(name);
        }
    }
    command.env("RUST_LOG", "info").env_remove("RUST_BACKTRACE");
    command
}

/// Fails the test if `output` shows a panic.
pub fn assert_no_panic(output: &str) {
    assert!(
        !output.contains("panicked"),
        "the process panicked:\n{output}"
    );
}
