//! The request body's read timeout (`body_read_timeout`): a body whose next
//! piece does not arrive in time ends with an error, and the request is
//! answered 408 with the connection closed, whatever the handler made of
//! the error (see [`crate::HttpServer`]'s `respond`). Without it a client
//! could hold a request slot and a handler for as long as it likes by
//! sending one byte of a declared body now and then.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The error a stalled body ends with.
#[derive(Debug)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body stalled")
    }
}

impl std::error::Error for BodyTimedOut {}

/// A body with a deadline for each of its pieces. `tripped` is set when
/// the deadline passed.
pub(crate) struct Guarded<B> {
    inner: B,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    tripped: Arc<AtomicBool>,
}

impl<B> Guarded<B> {
    pub(crate) fn new(inner: B, timeout: Duration, tripped: Arc<AtomicBool>) -> Self {
        Guarded {
            inner,
            timeout,
            sleep: None,
            tripped,
        }
    }
}

impl<B> Body for Guarded<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.tripped.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                // The clock starts again for the next piece.
                this.sleep = None;
                Poll::Ready(r.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.tripped.store(true, Ordering::Relaxed);
                        Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body that yields one piece and then never another.
    struct Stalls(bool);

    impl Body for Stalls {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.0 {
                Poll::Pending
            } else {
                self.0 = true;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"abc")))))
            }
        }
    }

    #[tokio::test]
    async fn a_stalled_body_ends_with_the_timeout_and_trips_the_flag() {
        let tripped = Arc::new(AtomicBool::new(false));
        let mut b = Guarded::new(Stalls(false), Duration::from_millis(200), tripped.clone());
        let first = b.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"abc"));
        assert!(!tripped.load(Ordering::Relaxed));
        let e = b.frame().await.unwrap().unwrap_err();
        assert!(e.is::<BodyTimedOut>());
        assert!(tripped.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_whole_body_passes() {
        let tripped = Arc::new(AtomicBool::new(false));
        let b = Guarded::new(
            http_body_util::Full::new(Bytes::from_static(b"hello")),
            Duration::from_secs(5),
            tripped.clone(),
        );
        let all = b.collect().await.unwrap().to_bytes();
        assert_eq!(all, Bytes::from_static(b"hello"));
        assert!(!tripped.load(Ordering::Relaxed));
    }
}
