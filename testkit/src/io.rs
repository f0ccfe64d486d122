//! Writers for testing sinks against sockets that take little at a time.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;

/// A writer that takes at most `step` bytes per call: every write a sink
/// makes is cut short, inside whatever it was writing.
#[derive(Debug, Default)]
pub struct Trickle {
    /// Everything written so far.
    pub out: Vec<u8>,
    /// Most bytes taken per write.
    pub step: usize,
    /// Shut down by the writer.
    pub shut: bool,
}

impl Trickle {
    /// A writer taking at most `step` bytes per call.
    pub fn new(step: usize) -> Self {
        Self {
            step,
            ..Self::default()
        }
    }
}

impl AsyncWrite for Trickle {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = buf.len().min(this.step);
        this.out.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().shut = true;
        Poll::Ready(Ok(()))
    }
}
