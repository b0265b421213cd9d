use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};

/// Where a request body the handler dropped unread ends up, so that the
/// connection can read and discard the rest before it answers.
pub(crate) type UnreadSlot<B> = Arc<Mutex<Option<Unread<B>>>>;

/// What is left of a request body dropped before its end.
pub(crate) struct Unread<B> {
    /// The rest of the body.
    pub(crate) body: B,
    /// Whether the handler had asked for any of it: only then has a client
    /// that sent `Expect: 100-continue` been told to send it.
    pub(crate) asked_for: bool,
}

/// A request body that, dropped before its end (a 413 over the body limit,
/// a 401 before the body was looked at), hands what is left of it to its
/// [`UnreadSlot`] instead of dropping it.
///
/// Answering while the client is still sending and then closing makes the
/// kernel reset the connection, and a client still writing its body never
/// reads the answer; read to its end (up to a bound) first, the body is out
/// of the way and the client reads the answer.
pub(crate) struct UnreadBody<B: Body> {
    body: Option<B>,
    asked_for: bool,
    slot: UnreadSlot<B>,
}

impl<B: Body> UnreadBody<B> {
    /// `body`, handed to `slot` if dropped before its end.
    pub(crate) fn new(body: B, slot: UnreadSlot<B>) -> Self {
        Self {
            body: Some(body),
            asked_for: false,
            slot,
        }
    }
}

impl<B: Body> Drop for UnreadBody<B> {
    fn drop(&mut self) {
        if let Some(body) = self.body.take().filter(|body| !body.is_end_stream()) {
            *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Unread {
                body,
                asked_for: self.asked_for,
            });
        }
    }
}

impl<B> Body for UnreadBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        this.asked_for = true;
        match this.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// How reading and discarding an unread body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discarded {
    /// Read to its end: the connection may serve another request.
    Whole,
    /// Over `limit` bytes, failed, or past its deadline: the connection
    /// closes after the answer.
    Cut,
}

/// Reads `body` to its end and drops what it reads, unless more than
/// `limit` bytes of it remain or it fails (its deadline passes).
pub(crate) async fn discard<B>(mut body: B, limit: usize) -> Discarded
where
    B: Body + Unpin,
{
    use hyper::body::Buf;
    let mut read = 0usize;
    loop {
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => return Discarded::Whole,
            Some(Err(_)) => return Discarded::Cut,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    read = read.saturating_add(data.remaining());
                    if read > limit {
                        return Discarded::Cut;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};

    type Chunks = StreamBody<
        futures_util::stream::Iter<
            std::vec::IntoIter<Result<Frame<hyper::body::Bytes>, std::convert::Infallible>>,
        >,
    >;

    fn chunks(n: usize, size: usize) -> Chunks {
        let frames = (0..n)
            .map(|_| Ok(Frame::data(hyper::body::Bytes::from(vec![b'x'; size]))))
            .collect::<Vec<_>>();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_lands_in_the_slot() {
        let slot: UnreadSlot<Chunks> = Arc::default();
        let mut body = UnreadBody::new(chunks(3, 10), Arc::clone(&slot));
        let first = body.frame().await.expect("a frame").expect("data");
        assert_eq!(first.into_data().expect("data").len(), 10);
        drop(body);
        let rest = slot.lock().unwrap().take().expect("the rest is kept");
        assert!(rest.asked_for);
        assert_eq!(
            rest.body.collect().await.expect("read").to_bytes().len(),
            20
        );
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_leaves_the_slot_empty() {
        let slot: UnreadSlot<Full<hyper::body::Bytes>> = Arc::default();
        let body = UnreadBody::new(Full::new("whole".into()), Arc::clone(&slot));
        assert_eq!(body.collect().await.expect("read").to_bytes(), "whole");
        assert!(slot.lock().unwrap().is_none());
    }

    #[test]
    fn a_body_never_asked_for_says_so() {
        let slot: UnreadSlot<Chunks> = Arc::default();
        drop(UnreadBody::new(chunks(1, 10), Arc::clone(&slot)));
        let rest = slot.lock().unwrap().take().expect("the body is kept");
        assert!(!rest.asked_for);
    }

    #[tokio::test]
    async fn discarding_stops_past_its_limit() {
        assert_eq!(discard(chunks(4, 100), 400).await, Discarded::Whole);
        assert_eq!(discard(chunks(5, 100), 400).await, Discarded::Cut);
    }
}
