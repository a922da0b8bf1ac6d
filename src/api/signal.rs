//! The signal path: how a transport reaches a peer before (and instead of) a direct
//! connection.
//!
//! A [`Signal`] sends opaque byte messages to a peer named by its peer URL and yields the
//! messages peers send us as a [`SignalRx`] stream of `(sender URL, bytes)`. The WebRTC
//! transport carries its offers, answers, ICE candidates, relayed data and close notices over
//! it (encoded as `crate::net::frame::SignalFrame`s), so anything that can forward bytes between
//! two keys fits: an sbd relay connection (`ws://host:port/<b64url pubkey>` is the peer URL,
//! a forward message is one signal message) or the in-page `crate::testing::LoopbackHub` used by
//! tests.
//!
//! Contract a `Signal` implementation keeps:
//! - messages from one sender to one receiver arrive in the order they were sent, or not at
//!   all (a relay that loses a message must also end that receiver's stream or fail later
//!   sends; sbd over one WebSocket does);
//! - the sender URL on the receive side is authenticated by the signal server (sbd: the
//!   server rewrote the header to the sender's verified key), so the transport may trust it
//!   as the peer's identity for admission;
//! - `send` waits while the path is congested instead of buffering without bound, and fails
//!   instead of dropping silently;
//! - the receive stream ends when the signal connection is closed.

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::stream::LocalBoxStream;

use crate::model::url::Url;

/// Messages arriving through a [`Signal`]: `(sender's peer URL, bytes)`, in order per sender.
/// The stream ends when the signal connection closes.
pub type SignalRx = LocalBoxStream<'static, (Url, Bytes)>;

/// Why a signal message could not be sent. Nothing was delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// No peer with that URL is reachable through this signal path (for sbd: another
    /// server, or a URL without a valid key).
    #[error("peer {0} is not reachable through this signal path")]
    Unreachable(Url),
    /// The message is longer than [`Signal::max_message_bytes`].
    #[error("signal message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Bytes offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The signal connection is closed.
    #[error("signal connection closed")]
    Closed,
}

/// Sends opaque messages to peers by peer URL (see the [module docs](self)).
pub trait Signal {
    /// Our own peer URL, as peers address us (and as our agent infos must name us).
    fn local_url(&self) -> &Url;

    /// Largest message [`send`](Self::send) accepts, in bytes (sbd: 19 968, its 20 000-byte
    /// message less the 32-byte header).
    fn max_message_bytes(&self) -> usize;

    /// Sends `msg` to `to`. The future resolves once the message is handed to the path (not
    /// when it is delivered), waiting while the path is congested.
    ///
    /// # Errors
    /// [`SignalError`]: unreachable peer, oversize message or closed signal.
    fn send(&self, to: &Url, msg: Bytes) -> LocalBoxFuture<'static, Result<(), SignalError>>;
}
