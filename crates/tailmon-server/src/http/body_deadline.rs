use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// A request body that must arrive whole before a deadline, counted from the
/// end of the request's headers. Past the deadline it yields
/// [`BodyTimedOut`] and raises its flag, so that the connection can answer
/// 408 whatever the handler made of the error.
///
/// The deadline covers the whole body, not the gap between two chunks: a
/// client that trickles a byte at a time cannot keep the request open.
pub(crate) struct BodyDeadline<B> {
    body: B,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    expired: Arc<AtomicBool>,
}

impl<B> BodyDeadline<B> {
    /// `body`, due within `timeout` from now; `expired` is raised if it is not.
    pub(crate) fn new(body: B, timeout: Duration, expired: Arc<AtomicBool>) -> Self {
        Self {
            body,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            expired,
        }
    }
}

/// The request body did not arrive within the body read timeout.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {} s", .0.as_secs_f64())]
pub(crate) struct BodyTimedOut(pub(crate) Duration);

impl<B> Body for BodyDeadline<B>
where
    B: Body + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        // What has arrived is handed on; the deadline only ends a wait for
        // more, which a trickling client cannot avoid.
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
