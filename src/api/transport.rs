//! The minimal transport a space driver needs: send a frame to a peer URL, close a
//! connection, and receive frames and connection events.
//!
//! Kept outside `src/net/` so the transport implementations (sbd relay, WebRTC, the simulated
//! network) can implement it without this file and theirs colliding; `net` may re-export it.
//! Single-threaded: futures are `!Send` ([`LocalBoxFuture`]), implementations use `Rc` and
//! `RefCell` freely.

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use crate::model::agent::AgentInfoSigned;
use crate::model::url::Url;
use crate::wire::WireMessage;

/// Why a frame could not be sent. The message is for humans (logs); the space treats any
/// error as "the peer is unresponsive" (Kitsune2 §5.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transport: {0}")]
pub struct TransportError(pub String);

/// Something that happened on the transport.
// A transient value, moved on at once (one per message); boxing the decoded message would
// only add an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A connection with `peer` is open (after preflight). `agents` are the agent infos its
    /// preflight carried that the transport verified (signature, expiry, naming `peer`'s URL);
    /// the space learns them at once instead of waiting for its next bootstrap poll.
    Connected {
        /// The peer URL.
        peer: Url,
        /// Its verified agent infos.
        agents: Vec<AgentInfoSigned>,
    },
    /// One NOTIFY or MODULE message from `from` on an open connection, decoded once by the
    /// transport (frames reach [`crate::wire::MAX_FRAME_BYTES`], 4 MiB: nobody decodes one
    /// twice). The transport has checked the handshake order (preflight first) but applies
    /// no admission rule: the space does, with its peer store
    /// ([`crate::core::peer_store::PeerStore::admits`]), on every message.
    Message {
        /// The sender's peer URL (authenticated by the signal server).
        from: Url,
        /// The decoded message.
        msg: WireMessage,
        /// The size of the frame as received, bytes (for accounting).
        len: usize,
    },
    /// Part of a message from `from` arrived (a chunk that completes none): the peer is
    /// sending. Membership counts it as hearing from the peer, so a long message on a slow
    /// or congested connection is not silence. A transport that delivers whole messages
    /// only need not send it; one that chunks sends it at most every few hundred ms per
    /// connection.
    Receiving {
        /// The sender's peer URL.
        from: Url,
    },
    /// The connection with `peer` closed or failed.
    Disconnected {
        /// The peer URL.
        peer: Url,
        /// Why, for humans.
        reason: String,
    },
}

/// A transport for one space (a multi-space peer hands each space a view that carries only
/// that space's frames).
pub trait Transport {
    /// Sends one frame to `to`, connecting first if needed. Resolves once the transport took
    /// the frame (queued within its back-pressure limit), or with an error if it cannot be
    /// delivered (connect failed, connection closed). Frames to one peer arrive in order.
    fn send(&self, to: &Url, frame: Bytes) -> LocalBoxFuture<'_, Result<(), TransportError>>;

    /// Sends one small, loss-tolerant frame (a SWIM packet) to `to` as a datagram: it may be
    /// lost or overtake earlier frames, and it must not wait behind bulk traffic to `to`
    /// (issue 11: "probes must not queue behind bulk fetch traffic"; SWIM itself tolerates
    /// loss). The default sends it as [`send`](Self::send) does, reliably and in order, for
    /// transports without a separate lane.
    fn send_datagram(
        &self,
        to: &Url,
        frame: Bytes,
    ) -> LocalBoxFuture<'_, Result<(), TransportError>> {
        self.send(to, frame)
    }

    /// Closes the connection to `peer`, sending `reason` in a DISCONNECT frame if possible.
    fn close(&self, peer: &Url, reason: &str);

    /// The next event; `None` once the transport is shut down. Must be cancel-safe: a driver
    /// may drop the future and call again without losing an event.
    fn next_event(&self) -> LocalBoxFuture<'_, Option<TransportEvent>>;
}
