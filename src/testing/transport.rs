//! An in-memory [`Transport`]: endpoints of one [`MemNetwork`] reach each other by peer URL,
//! in order, at once. For async drivers ([`crate::core::space::run_space`]) on a local
//! executor with a [`crate::testing::VirtualClock`].

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::{LocalBoxFuture, poll_fn};
use futures::{FutureExt, StreamExt};

use crate::api::transport::{Transport, TransportError, TransportEvent};
use crate::model::agent::AgentInfoSigned;
use crate::model::url::Url;
use crate::wire::WireMessage;

#[derive(Default)]
struct Net {
    routes: HashMap<Url, mpsc::UnboundedSender<TransportEvent>>,
    /// Agent infos each endpoint's preflight carries.
    preflight: HashMap<Url, Vec<AgentInfoSigned>>,
    /// Pairs (either order) whose connection is open.
    connected: HashSet<(Url, Url)>,
    /// Directed links whose frames are lost (a partition); sends still succeed.
    cut: HashSet<(Url, Url)>,
    delivered: u64,
    lost: u64,
}

fn pair(a: &Url, b: &Url) -> (Url, Url) {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

/// The event a transport yields for a frame from `from`: decoded once, as a real transport
/// does ([`TransportEvent::Message`]). A frame that does not decode is refused at the sender
/// (the test wrote a bad frame; a real transport would close the connection).
fn frame_event(from: Url, frame: Bytes) -> Result<TransportEvent, TransportError> {
    let len = frame.len();
    let msg = WireMessage::decode(frame)
        .map_err(|e| TransportError(format!("undecodable frame: {e}")))?;
    Ok(TransportEvent::Message { from, msg, len })
}

/// A set of in-memory endpoints that reach each other by URL (see the [module docs](self)).
///
/// A connection opens on the first frame between two endpoints: both get
/// [`TransportEvent::Connected`] with the other's preflight agent infos
/// ([`MemNetwork::set_preflight`]), then the frame. [`Transport::close`] ends it on both sides
/// ([`TransportEvent::Disconnected`]). [`MemNetwork::cut`] loses frames on a link (the send
/// still succeeds, as with a connection that died silently).
#[derive(Clone, Default)]
pub struct MemNetwork {
    inner: Rc<RefCell<Net>>,
}

impl std::fmt::Debug for MemNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inner.borrow();
        f.debug_struct("MemNetwork")
            .field("endpoints", &n.routes.len())
            .field("delivered", &n.delivered)
            .field("lost", &n.lost)
            .finish()
    }
}

impl MemNetwork {
    /// An empty network.
    pub fn new() -> Self {
        MemNetwork::default()
    }

    /// A new endpoint reachable at `url` (replacing any earlier one with that URL).
    pub fn endpoint(&self, url: Url) -> MemTransport {
        let (tx, rx) = mpsc::unbounded();
        self.inner.borrow_mut().routes.insert(url.clone(), tx);
        MemTransport {
            me: url,
            net: self.clone(),
            inbox: RefCell::new(rx),
        }
    }

    /// The agent infos `url`'s preflight carries to every peer it connects to.
    pub fn set_preflight(&self, url: &Url, infos: Vec<AgentInfoSigned>) {
        self.inner.borrow_mut().preflight.insert(url.clone(), infos);
    }

    /// Frames from `from` to `to` are lost from now on (until [`MemNetwork::heal`]).
    pub fn cut(&self, from: &Url, to: &Url) {
        self.inner
            .borrow_mut()
            .cut
            .insert((from.clone(), to.clone()));
    }

    /// Every cut link carries frames again.
    pub fn heal(&self) {
        self.inner.borrow_mut().cut.clear();
    }

    /// Frames delivered so far.
    pub fn delivered(&self) -> u64 {
        self.inner.borrow().delivered
    }

    /// Frames lost on cut links so far.
    pub fn lost(&self) -> u64 {
        self.inner.borrow().lost
    }

    fn send(&self, from: &Url, to: &Url, frame: Bytes) -> Result<(), TransportError> {
        let mut n = self.inner.borrow_mut();
        let Some(tx) = n.routes.get(to).cloned() else {
            return Err(TransportError(format!("no endpoint at {to}")));
        };
        if n.connected.insert(pair(from, to)) {
            let theirs = n.preflight.get(to).cloned().unwrap_or_default();
            let ours = n.preflight.get(from).cloned().unwrap_or_default();
            let _ = tx.unbounded_send(TransportEvent::Connected {
                peer: from.clone(),
                agents: ours,
            });
            if let Some(me) = n.routes.get(from) {
                let _ = me.unbounded_send(TransportEvent::Connected {
                    peer: to.clone(),
                    agents: theirs,
                });
            }
        }
        if n.cut.contains(&(from.clone(), to.clone())) {
            n.lost += 1;
            return Ok(());
        }
        tx.unbounded_send(frame_event(from.clone(), frame)?)
            .map_err(|_| TransportError(format!("endpoint {to} is gone")))?;
        n.delivered += 1;
        Ok(())
    }

    fn close(&self, from: &Url, to: &Url, reason: &str) {
        let mut n = self.inner.borrow_mut();
        if !n.connected.remove(&pair(from, to)) {
            return;
        }
        for (at, other) in [(to, from), (from, to)] {
            if let Some(tx) = n.routes.get(at) {
                let _ = tx.unbounded_send(TransportEvent::Disconnected {
                    peer: other.clone(),
                    reason: reason.to_string(),
                });
            }
        }
    }
}

/// One endpoint of a [`MemNetwork`]; implements [`Transport`]. Dropping it makes its URL
/// unreachable.
pub struct MemTransport {
    me: Url,
    net: MemNetwork,
    inbox: RefCell<mpsc::UnboundedReceiver<TransportEvent>>,
}

impl std::fmt::Debug for MemTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemTransport")
            .field("me", &self.me)
            .finish()
    }
}

impl MemTransport {
    /// This endpoint's URL.
    pub fn url(&self) -> &Url {
        &self.me
    }
}

impl Drop for MemTransport {
    fn drop(&mut self) {
        self.net.inner.borrow_mut().routes.remove(&self.me);
    }
}

impl Transport for MemTransport {
    fn send(&self, to: &Url, frame: Bytes) -> LocalBoxFuture<'_, Result<(), TransportError>> {
        let r = self.net.send(&self.me, to, frame);
        async move { r }.boxed_local()
    }

    fn close(&self, peer: &Url, reason: &str) {
        self.net.close(&self.me, peer, reason);
    }

    fn next_event(&self) -> LocalBoxFuture<'_, Option<TransportEvent>> {
        poll_fn(move |cx| self.inbox.borrow_mut().poll_next_unpin(cx)).boxed_local()
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;

    fn url(n: u8) -> Url {
        Url::parse(&format!("ws://mem.test:80/p{n}")).unwrap()
    }

    fn notify(n: u8) -> Bytes {
        let space = crate::model::id::SpaceId::from_bytes(vec![7; 32]);
        crate::wire::encode_notify(&space, vec![n])
    }

    #[test]
    fn frames_arrive_in_order_after_connected_and_close_reaches_both_sides() {
        let net = MemNetwork::new();
        let (a, b) = (net.endpoint(url(1)), net.endpoint(url(2)));
        block_on(a.send(&url(2), notify(1))).unwrap();
        block_on(a.send(&url(2), notify(2))).unwrap();
        let got: Vec<_> = (0..3).map(|_| block_on(b.next_event()).unwrap()).collect();
        assert!(matches!(&got[0], TransportEvent::Connected { peer, .. } if peer == &url(1)));
        assert_eq!(got[1], frame_event(url(1), notify(1)).unwrap());
        assert_eq!(got[2], frame_event(url(1), notify(2)).unwrap());
        assert!(
            block_on(a.send(&url(2), Bytes::from_static(b"\xff"))).is_err(),
            "undecodable"
        );
        assert!(matches!(
            block_on(a.next_event()),
            Some(TransportEvent::Connected { .. })
        ));
        a.close(&url(2), "bye");
        assert!(matches!(block_on(b.next_event()),
            Some(TransportEvent::Disconnected { peer, .. }) if peer == url(1)));
        assert!(matches!(block_on(a.next_event()),
            Some(TransportEvent::Disconnected { peer, .. }) if peer == url(2)));
        // A cut link loses frames; a dropped endpoint is unreachable.
        net.cut(&url(1), &url(2));
        block_on(a.send(&url(2), notify(3))).unwrap();
        assert_eq!((net.delivered(), net.lost()), (2, 1));
        drop(b);
        assert!(block_on(a.send(&url(2), Bytes::new())).is_err());
    }
}
