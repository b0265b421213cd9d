//! The answers hyper writes by itself to a request it could not parse
//! (`431` headers too large, `414` URI too long, `400` malformed), given the
//! JSON body and the headers every other error answer has.
//!
//! hyper offers no hook for these: it writes a bare head (`connection:
//! close`, `content-length: 0` and `date` only) and closes the connection. [`ParseErrorAnswer`] sits
//! between hyper and the socket and swaps such a head, when hyper hands it
//! over on its own, for the full answer. The router's own answers always
//! carry other headers, so they are never taken for one.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::StatusCode;
use tailmon_core::ErrorBody;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::http::security_headers::CONTENT_SECURITY_POLICY;
use crate::http::serve_options::MAX_READ_AHEAD_BYTES;

/// Longest head hyper writes for a parse error (its status line,
/// `connection`, the length, the date): a bound on what is looked at.
const MAX_AUTOMATIC_HEAD: usize = 200;

/// An I/O stream whose writes of hyper's bare parse-error answers are
/// replaced by JSON ones; everything else passes through untouched.
pub(crate) struct ParseErrorAnswer<I> {
    io: I,
    /// The replacement still to write, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<I> ParseErrorAnswer<I> {
    pub(crate) fn new(io: I) -> Self {
        Self { io, pending: None }
    }
}

/// The full answer replacing `head`, when `head` is one of hyper's bare
/// parse-error answers, whole.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    if head.len() > MAX_AUTOMATIC_HEAD || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.trim_end_matches("\r\n").split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?;
    let code: u16 = status.get(..3)?.parse().ok()?;
    let mut date = None;
    let mut empty = false;
    for line in lines {
        let (name, value) = line.split_once(": ")?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" if value == "0" => empty = true,
            "connection" if value.eq_ignore_ascii_case("close") => {}
            "date" => date = Some(value),
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let message = match StatusCode::from_u16(code).ok()? {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => format!(
            "the request's headers are too large: the server reads at most {} KiB of them",
            MAX_READ_AHEAD_BYTES / 1024
        ),
        StatusCode::URI_TOO_LONG => "the request's URI is too long".to_owned(),
        StatusCode::BAD_REQUEST => {
            "the request is not valid HTTP/1.1: its request line or a header is malformed"
                .to_owned()
        }
        _ => return None,
    };
    let body = serde_json::to_string(&ErrorBody::new(message)).ok()?;
    let mut answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\
content-security-policy: {CONTENT_SECURITY_POLICY}\r\nx-content-type-options: nosniff\r\n\
x-frame-options: DENY\r\nreferrer-policy: no-referrer\r\n",
        body.len()
    );
    if let Some(date) = date {
        answer.push_str(&format!("date: {date}\r\n"));
    }
    answer.push_str("\r\n");
    answer.push_str(&body);
    Some(answer.into_bytes())
}

impl<I: AsyncWrite + Unpin> ParseErrorAnswer<I> {
    /// Writes what is left of the replacement.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = self.pending.as_mut() {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `head`, hyper's whole parse-error answer, as written: the
    /// replacement goes out now or at the flush.
    fn replace(
        &mut self,
        cx: &mut Context<'_>,
        answer: Vec<u8>,
        head: usize,
    ) -> Poll<io::Result<usize>> {
        self.pending = Some((answer, 0));
        if let Poll::Ready(Err(error)) = self.poll_pending(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(head))
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ParseErrorAnswer<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ParseErrorAnswer<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(answer) = replacement(buf) {
            return this.replace(cx, answer, buf.len());
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        let mut whole = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (whole.next(), whole.next())
            && let Some(answer) = replacement(only)
        {
            return this.replace(cx, answer, only.len());
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HYPERS_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sat, 28 Nov 2026 14:30:00 GMT\r\n\r\n";

    async fn through(writes: &[&[u8]]) -> String {
        let (server, mut client) = tokio::io::duplex(64);
        let mut server = ParseErrorAnswer::new(server);
        let writes: Vec<Vec<u8>> = writes.iter().map(|w| w.to_vec()).collect();
        let writer = tokio::spawn(async move {
            for write in writes {
                server.write_all(&write).await.expect("write");
            }
            server.shutdown().await.expect("shutdown");
        });
        let mut received = String::new();
        client.read_to_string(&mut received).await.expect("read");
        writer.await.expect("writer");
        received
    }

    #[tokio::test]
    async fn hypers_bare_431_becomes_a_json_answer() {
        let received = through(&[HYPERS_431]).await;
        let (head, body) = received.split_once("\r\n\r\n").expect("a head");
        assert!(
            head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.contains("\r\nconnection: close\r\n"));
        assert!(head.contains("\r\ndate: Sat, 28 Nov 2026 14:30:00 GMT"));
        assert!(head.contains("\r\nx-content-type-options: nosniff"));
        let error: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert!(
            error["error"].as_str().unwrap().contains("64 KiB"),
            "{error}"
        );
    }

    #[test]
    fn only_hypers_bare_parse_error_heads_are_replaced() {
        for code in ["400 Bad Request", "414 URI Too Long"] {
            let head = format!("HTTP/1.1 {code}\r\ncontent-length: 0\r\ndate: x\r\n\r\n");
            assert!(replacement(head.as_bytes()).is_some(), "{code}");
        }
        for head in [
            // The router's answers carry more headers, or a body.
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\ndate: x\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            // Part of a head only.
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
        ] {
            assert!(replacement(head.as_bytes()).is_none(), "{head}");
        }
    }

    #[tokio::test]
    async fn other_writes_pass_untouched() {
        let answer: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        assert_eq!(
            through(&[answer, answer]).await.as_bytes(),
            [answer, answer].concat()
        );
    }
}
