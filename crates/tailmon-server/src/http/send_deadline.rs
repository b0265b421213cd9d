//! A deadline on sending answers, so that a client that stops reading
//! cannot hold its connection (and the memory of its send queue) forever.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::refusal_log::RefusalLog;

/// While an answer waits on the client, the client must take at least this
/// much of it (or all that is left) within the send timeout: 16 KiB, so a
/// client is dropped below some 550 bytes a second at the default 30 s.
pub const MIN_SEND_PROGRESS: usize = 16 * 1024;

/// A connection's socket whose writes must make progress: once a write
/// blocks because the client is not reading, the client has the send
/// timeout to take [`MIN_SEND_PROGRESS`] bytes, or the rest of what is
/// being sent (the server flushes). Otherwise the write fails with
/// `TimedOut`, and the connection is closed and its slot freed.
pub(crate) struct SendDeadline<I> {
    io: I,
    timeout: Duration,
    /// Armed while writes are blocked on the client.
    deadline: Pin<Box<Sleep>>,
    blocked: bool,
    /// Bytes the client took since writes first blocked.
    taken: usize,
    dropped: Arc<RefusalLog>,
}

impl<I> SendDeadline<I> {
    /// `io`, whose blocked writes must make progress within `timeout`;
    /// clients dropped for it are counted in `dropped`.
    pub(crate) fn new(io: I, timeout: Duration, dropped: Arc<RefusalLog>) -> Self {
        Self {
            io,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            blocked: false,
            taken: 0,
            dropped,
        }
    }

    /// What a write of the socket came to, seen against the deadline.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if self.blocked {
                    self.taken += n;
                    if self.taken >= MIN_SEND_PROGRESS {
                        self.blocked = false;
                    }
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.stalled(cx).map(Err),
        }
    }

    /// After a write that could not go on: arms the deadline if it is not,
    /// and fails once it has passed.
    fn stalled(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if !self.blocked {
            self.blocked = true;
            self.taken = 0;
            self.deadline.as_mut().reset(Instant::now() + self.timeout);
        }
        ready!(self.deadline.as_mut().poll(cx));
        if let Some(since_last_line) = self.dropped.count() {
            tracing::info!(
                since_last_line,
                total = self.dropped.total(),
                "client stopped reading its answer; connection dropped"
            );
        }
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took too little of the answer within the send timeout",
        ))
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SendDeadline<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SendDeadline<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                // Everything written so far is with the kernel: caught up.
                this.blocked = false;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.stalled(cx).map(Err),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_is_cut_off_and_one_that_reads_is_not() {
        let dropped = Arc::new(RefusalLog::default());
        // A pipe with room for 1 KiB: the "kernel's" send buffer.
        let (server, mut client) = tokio::io::duplex(1024);
        let mut server = SendDeadline::new(server, Duration::from_secs(30), dropped.clone());
        let answer = vec![b'x'; 64 * 1024];

        // A client that reads keeps the answer flowing, however long it takes.
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 64 * 1024];
            for chunk in got.chunks_mut(2048) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                client.read_exact(chunk).await.expect("read");
            }
            client
        });
        server
            .write_all(&answer)
            .await
            .expect("sent to a slow reader");
        server.flush().await.expect("flushed");
        let client = reader.await.expect("reader");
        assert_eq!(dropped.total(), 0);

        // Then it stops reading: the next answer fails after the timeout.
        let started = Instant::now();
        let error = server.write_all(&answer).await.expect_err("cut off");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert_eq!(dropped.total(), 1);
        drop(client);
    }
}
