//! THE admission rule (Kitsune2 `crates/api/src/transport.rs`, reference §3.3: module traffic
//! only from a peer whose verified, unexpired, non-tombstone agent info for this space names
//! the sender's URL, and which is not blocked) has one home, `PeerStore::admits`, over the
//! space's one store of agent infos; the transport decodes and orders (handshake) but admits
//! nothing by itself.
//!
//! Native and sans-IO end to end: the receiving side's connection policy
//! ([`ConnManager`], the transport's rules) and its [`Space`] are wired by hand, the way the
//! browser glue and `run_space` wire them; the hostile peer's messages are bytes.

use bytes::Bytes;
use fennec::core::space::{Output, Space, SpaceConfig, StoreRequest, perform};
use fennec::net::admission::encode_preflight;
use fennec::net::conn::{Action, ConnManager, NetConfig};
use fennec::net::frame::SignalFrame;
use fennec::wire::{encode_fetch_response, encode_publish_agent, encode_publish_ops};
use fennec::{
    AgentInfo, AgentInfoSigned, AgentKey, DhtArc, MemOpStore, Op, SpaceId, Timestamp, Url,
};
use futures::executor::block_on;

const T0: Timestamp = Timestamp(1_700_000_000_000_000);

fn url(name: &str) -> Url {
    Url::parse(&format!("ws://127.0.0.1:1/{name}")).unwrap()
}

fn space_id() -> SpaceId {
    SpaceId::from_bytes(vec![5u8; 32])
}

/// The receiving peer: its connection policy and its space, wired like the glue does.
struct Receiver {
    conns: ConnManager,
    space: Space,
    store: MemOpStore,
    /// What the space sent (to, frame) and whom it asked to close.
    sent: Vec<(Url, Bytes)>,
    closes: Vec<Url>,
    store_ops: usize,
}

impl Receiver {
    fn new() -> Self {
        let key = AgentKey::from_secret_bytes(&[1; 32]);
        let agent = key.agent_id();
        let me = url("b");
        let space = Space::new(
            SpaceConfig::new(space_id()),
            Box::new(key),
            agent,
            Some(me.clone()),
            T0,
            1,
        )
        .unwrap();
        Receiver {
            conns: ConnManager::new(me, NetConfig::default()).unwrap(),
            space,
            store: MemOpStore::new(|| T0),
            sent: Vec::new(),
            closes: Vec::new(),
            store_ops: 0,
        }
    }

    /// Carries out the connection policy's queued actions the way the glue does, after each
    /// input: `Connected` gives the space the preflight's agents, `Deliver` hands it the
    /// decoded message.
    fn apply(&mut self) {
        while let Some(a) = self.conns.poll_output() {
            match a {
                Action::SendPreflight { peer, conn } => {
                    self.conns.preflight_sent(&peer, conn, T0);
                }
                Action::Connected { agents, .. } => self.space.insert_agent_infos(T0, agents),
                Action::Deliver { peer, msg, .. } => self.space.handle_message(T0, peer, msg),
                _ => {}
            }
        }
        self.drain();
    }

    /// Performs the space's outputs; store operations at once on the memory store.
    fn drain(&mut self) {
        while let Some(o) = self.space.poll_output() {
            match o {
                Output::Send { to, frame, .. } => self.sent.push((to, frame)),
                Output::Store { ticket, request } => {
                    if !matches!(request, StoreRequest::PersistSliceHashes(_)) {
                        self.store_ops += 1;
                    }
                    let r = block_on(perform(&self.store, request));
                    self.space.handle_store_response(T0, ticket, r);
                }
                Output::Close { peer, .. } => self.closes.push(peer),
                Output::Event(_) => {}
            }
        }
    }

    /// One whole message from `peer` on connection `conn`.
    fn receive(&mut self, peer: &Url, conn: u64, msg: Bytes) {
        self.conns.handle_message(peer, conn, msg, T0);
        self.apply();
    }

    /// Work the space did for `peer`: frames to it plus store operations.
    fn work(&self) -> (usize, usize) {
        (self.sent.len(), self.store_ops)
    }
}

fn signed(key: &AgentKey, url: &Url, created: Timestamp) -> AgentInfoSigned {
    AgentInfoSigned::sign(
        key,
        AgentInfo::new(
            key.agent_id(),
            space_id(),
            created,
            Some(url.clone()),
            DhtArc::FULL,
        ),
    )
    .unwrap()
}

#[test]
fn an_agent_blocked_by_the_space_gets_no_module_traffic_through_an_open_connection() {
    let mut b = Receiver::new();
    let x = url("x");
    let x_key = AgentKey::from_secret_bytes(&[9; 32]);
    let x_info = signed(&x_key, &x, T0);

    // X opens a connection (WebRTC offer; its data channel is open) and sends its preflight.
    let offer = SignalFrame::Offer {
        conn: 7,
        sdp: "sdp".into(),
    };
    b.conns.handle_signal(&x, offer, T0);
    b.apply();
    b.conns.path_open(&x, 7, T0);
    b.apply();
    b.receive(&x, 7, encode_preflight(std::slice::from_ref(&x_info)));
    assert!(
        b.space.peer_store().admits(T0, &x),
        "X is admitted by its preflight"
    );

    // X is admitted: its announcement is acted on (a store lookup, then a fetch request).
    let op = Op::new(T0, &b"real"[..]).unwrap();
    b.receive(&x, 7, encode_publish_ops(&space_id(), &[op.id()]));
    assert!(
        b.sent.iter().any(|(to, _)| to == &x),
        "the admitted peer's announcement was fetched"
    );

    // X answers with other bytes under that id: the space blocks it.
    let wrong = Op::new(T0, &b"fake"[..]).unwrap().encode();
    b.receive(
        &x,
        7,
        encode_fetch_response(&space_id(), &[(op.id(), wrong)]),
    );
    assert_eq!(b.closes, vec![x.clone()], "the space asked to close X");
    assert!(!b.space.peer_store().admits(T0, &x));

    // The close has not happened yet: the connection is still open at the transport, which
    // keeps delivering decoded messages. None of them gets through the space.
    let before = (b.work(), b.space.stats().unadmitted);
    let op2 = Op::new(T0, &b"another"[..]).unwrap();
    b.receive(&x, 7, encode_publish_ops(&space_id(), &[op2.id()]));
    // Re-introducing itself with a newer info does not lift the block.
    let newer = signed(&x_key, &x, T0.add_micros(1));
    b.receive(&x, 7, encode_publish_agent(&space_id(), newer.encode()));
    b.receive(&x, 7, encode_publish_ops(&space_id(), &[op2.id()]));
    assert_eq!(
        b.conns.stats().messages_received,
        5,
        "the transport delivered all"
    );
    assert_eq!(
        b.work(),
        before.0,
        "no store lookup, no reply, no fetch for X"
    );
    assert_eq!(b.space.stats().unadmitted, before.1 + 3);

    // Nor through a new connection with a fresh preflight.
    let offer = SignalFrame::Offer {
        conn: 8,
        sdp: "sdp".into(),
    };
    b.conns.handle_signal(&x, offer, T0);
    b.apply();
    b.receive(&x, 8, encode_preflight(&[newer]));
    b.receive(&x, 8, encode_publish_ops(&space_id(), &[op2.id()]));
    assert_eq!(b.work(), before.0);
    assert_eq!(b.space.stats().unadmitted, before.1 + 4);
    assert!(!b.space.peer_store().admits(T0, &x));
}
