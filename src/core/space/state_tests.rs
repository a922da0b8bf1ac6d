//! Rules of the space core that span many inputs: publish completion by token, and per-peer
//! state that stays bounded while thousands of peers join and leave. The space is driven
//! directly: store operations performed at once on a [`MemOpStore`] (or failed on purpose),
//! frames from simulated peers handed to [`Space::handle_frame`], virtual time.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::executor::block_on;

use super::*;
use crate::model::agent::AgentKey;
use crate::store::MemOpStore;
use crate::wire::{
    AcceptResponseMessage, ArcSetMessage, K2GossipAcceptMessage, K2GossipInitiateMessage,
    K2GossipNoDiffMessage, encode_fetch_request, encode_fetch_response, encode_publish_ops,
};

const T0: Timestamp = Timestamp(1_700_000_000_000_000);
const SEC: i64 = 1_000_000;

fn space_id() -> SpaceId {
    SpaceId::from_bytes(vec![5u8; 32])
}

fn key(n: u64) -> AgentKey {
    let mut b = [7u8; 32];
    b[..8].copy_from_slice(&n.to_le_bytes());
    AgentKey::from_secret_bytes(&b)
}

fn peer_url(n: u64) -> Url {
    Url::parse(&format!("ws://peer.test:80/p{n}")).unwrap()
}

fn info(k: &AgentKey, at: Timestamp, url: Option<Url>) -> AgentInfoSigned {
    let i = AgentInfo::new(k.agent_id(), space_id(), at, url, DhtArc::FULL);
    AgentInfoSigned::sign(k, i).unwrap()
}

fn tombstone(k: &AgentKey, at: Timestamp) -> AgentInfoSigned {
    AgentInfoSigned::sign(k, AgentInfo::tombstone(k.agent_id(), space_id(), at)).unwrap()
}

fn local(cfg: SpaceConfig) -> Space {
    let k = key(u64::MAX);
    Space::new(
        cfg,
        Box::new(k.clone()),
        k.agent_id(),
        Some(peer_url(0)),
        T0,
        1,
    )
    .unwrap()
}

fn next_store(s: &mut Space) -> (StoreTicket, StoreRequest) {
    loop {
        match s.poll_output() {
            Some(Output::Store { ticket, request }) => return (ticket, request),
            Some(Output::Send { ticket, .. }) => s.handle_send_result(T0, ticket, Ok(())),
            Some(_) => {}
            None => panic!("no store request"),
        }
    }
}

fn events(s: &mut Space) -> Vec<SpaceEvent> {
    std::iter::from_fn(|| s.poll_output())
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn failure() -> StoreError {
    StoreError::QuotaExceeded("test".into())
}

/// Deliverable 5 of issue 8: a store failure of one batch rejects only its own publishes;
/// B's publishes resolve; failures of a fetched write and of serving a peer's fetch settle
/// no publish.
#[test]
fn each_publish_settles_by_its_own_batch_and_other_store_failures_settle_none() {
    let mut s = knowing_peer_1(SpaceConfig::new(space_id()));
    // Batch A: two publishes, one write.
    let a1 = s.publish(T0, &b"a1"[..]).unwrap();
    let a2 = s.publish(T0, &b"a2"[..]).unwrap();
    let (write_a, _) = next_store(&mut s);
    // Batch B: the same payload as a1 (same op id, its own token) and another op.
    let b1 = s.publish(T0, &b"a1"[..]).unwrap();
    let b2 = s.publish(T0, &b"b2"[..]).unwrap();
    assert_eq!(b1.op_id, a1.op_id, "same op, other publish");
    let tokens: HashSet<PublishToken> = [a1.token, a2.token, b1.token, b2.token].into();
    assert_eq!(tokens.len(), 4, "every publish has its own token");
    let (write_b, request_b) = next_store(&mut s);
    // The peer asks for an op: serving it needs a store read, which will fail.
    let missing = OpId::from_bytes(vec![9u8; 32]);
    let ask = encode_fetch_request(&space_id(), std::slice::from_ref(&missing));
    s.handle_frame(T0, peer_url(1), ask);
    let (serve, _) = next_store(&mut s);
    // The peer announces an op we lack; we fetch it (no lookup: the store was empty and
    // holds only what this space wrote); writing it will fail.
    let op = Op::new(T0, &b"fetched"[..]).unwrap();
    s.handle_frame(T0, peer_url(1), encode_publish_ops(&space_id(), &[op.id()]));
    let store = MemOpStore::new(|| T0);
    s.handle_timeout(T0.add_micros(SEC));
    while let Some(o) = s.poll_output() {
        if let Output::Send { ticket, .. } = o {
            s.handle_send_result(T0, ticket, Ok(()));
        }
    }
    let data = encode_fetch_response(&space_id(), &[(op.id(), op.encode())]);
    s.handle_frame(T0, peer_url(1), data);
    let (fetched_write, _) = next_store(&mut s);
    while s.poll_output().is_some() {}

    s.handle_store_response(T0, serve, StoreResponse::Retrieved(Err(failure())));
    s.handle_store_response(T0, fetched_write, StoreResponse::Written(Err(failure())));
    let e = events(&mut s);
    let settled = |e: &SpaceEvent| {
        matches!(
            e,
            SpaceEvent::OpStored { .. } | SpaceEvent::PublishFailed { .. }
        )
    };
    assert!(
        !e.iter().any(settled),
        "other failures settle no publish: {e:?}"
    );
    assert_eq!(
        e.iter()
            .filter(|e| matches!(e, SpaceEvent::StoreFailed { .. }))
            .count(),
        2
    );

    s.handle_store_response(T0, write_a, StoreResponse::Written(Err(failure())));
    let written = block_on(perform(&store, request_b));
    s.handle_store_response(T0, write_b, written);
    let e = events(&mut s);
    let failed: Vec<PublishToken> = e
        .iter()
        .filter_map(|e| match e {
            SpaceEvent::PublishFailed { token, .. } => Some(*token),
            _ => None,
        })
        .collect();
    let stored: Vec<PublishToken> = e
        .iter()
        .filter_map(|e| match e {
            SpaceEvent::OpStored { token, .. } => Some(*token),
            _ => None,
        })
        .collect();
    assert_eq!(failed, vec![a1.token, a2.token]);
    assert_eq!(stored, vec![b1.token, b2.token]);
}

/// A [`local`] space with `cfg` that knows peer 1 (agent `key(1)` at `peer_url(1)`), its
/// outputs so far taken.
fn knowing_peer_1(cfg: SpaceConfig) -> Space {
    let mut s = local(cfg);
    s.insert_agent_infos(T0, vec![info(&key(1), T0, Some(peer_url(1)))]);
    while s.poll_output().is_some() {}
    s
}

/// Drains outputs, answering sends; returns the store requests seen.
fn store_requests(s: &mut Space) -> Vec<(StoreTicket, StoreRequest)> {
    let mut out = Vec::new();
    while let Some(o) = s.poll_output() {
        match o {
            Output::Store { ticket, request } => out.push((ticket, request)),
            Output::Send { ticket, .. } => s.handle_send_result(T0, ticket, Ok(())),
            _ => {}
        }
    }
    out
}

/// Announced ids skip the `filter_out_existing_ops` read only when the space knows every id
/// its store holds (`HeldIds`): a fresh store's ids do; one that may be held (a fingerprint
/// hit), or any id once the loaded store held ops, is looked up.
#[test]
fn announced_ids_skip_the_store_lookup_only_while_every_held_id_is_known() {
    let mut cfg = SpaceConfig::new(space_id());
    // Only the last stored op is "recent", so an older one must be found some other way.
    cfg.recently_stored = 1;
    let store = MemOpStore::new(|| T0);
    let mut s = knowing_peer_1(cfg.clone());
    let held = s.publish(T0, &b"held"[..]).unwrap().op_id;
    s.publish(T0, &b"newest"[..]).unwrap();
    let (ticket, write) = next_store(&mut s);
    s.handle_store_response(T0, ticket, block_on(perform(&store, write)));
    store_requests(&mut s);

    let fresh = Op::new(T0, &b"fresh"[..]).unwrap().id();
    let announce = encode_publish_ops(&space_id(), &[held.clone(), fresh.clone()]);
    s.handle_frame(T0, peer_url(1), announce.clone());
    let reqs = store_requests(&mut s);
    assert!(
        matches!(&reqs[..], [(_, StoreRequest::FilterMissing(ids))] if *ids == vec![held.clone()]),
        "only the held id is looked up: {reqs:?}"
    );
    assert_eq!(s.stats().announced_fetched_unread, 1);
    assert!(s.fetch.is_pending(&fresh));

    // A space whose store already held ops when it loaded looks every id up.
    let mut t = local(cfg);
    block_on(t.load_model(&store, T0)).unwrap();
    t.insert_agent_infos(T0, vec![info(&key(1), T0, Some(peer_url(1)))]);
    store_requests(&mut t);
    t.handle_frame(T0, peer_url(1), announce);
    let reqs = store_requests(&mut t);
    assert!(
        matches!(&reqs[..], [(_, StoreRequest::FilterMissing(ids))] if ids.len() == 2),
        "{reqs:?}"
    );
    assert_eq!(t.stats().announced_fetched_unread, 0);
}

/// Pushed ops (a `FetchResponse` nobody asked for, [`SpaceConfig::push_max_bytes`]) are
/// verified and written; past [`MAX_PUSH_WRITING_PER_PEER`] bytes being written for the peer
/// they are fetched instead (the announcement way); wrong data is misbehaviour and nothing of
/// the frame is kept; ops outside the arc are dropped.
#[test]
fn pushed_ops_are_verified_and_bounded_per_peer_the_rest_fetched() {
    let mut s = knowing_peer_1(SpaceConfig::new(space_id()));
    let op = |tag: u8, len: usize| Op::new(T0, vec![tag; len]).unwrap();
    let push = |ops: &[&Op]| {
        let pairs: Vec<_> = ops.iter().map(|o| (o.id(), o.encode())).collect();
        encode_fetch_response(&space_id(), &pairs)
    };
    let (a, b, c) = (op(1, 600_000), op(2, 600_000), op(3, 100));
    s.handle_frame(T0, peer_url(1), push(&[&a, &b]));
    let reqs = store_requests(&mut s);
    let written: Vec<Vec<OpId>> = reqs.iter().filter_map(|(_, r)| write_ids(r)).collect();
    assert_eq!(written, vec![vec![a.id()]], "b is over the bound: {reqs:?}");
    assert!(s.fetch.is_pending(&b.id()), "b is fetched instead");
    let st = s.stats();
    assert_eq!((st.pushed_taken, st.pushed_deferred), (1, 1));
    assert_eq!(s.state_sizes().push_writing, 1);
    // While a is written, another peer announcing it (or a gossip round offering it) does
    // not start a fetch or a lookup, and a second push of it is dropped.
    let other = key(2);
    s.insert_agent_infos(T0, vec![info(&other, T0, Some(peer_url(2)))]);
    store_requests(&mut s);
    s.handle_frame(T0, peer_url(2), encode_publish_ops(&space_id(), &[a.id()]));
    s.handle_frame(T0, peer_url(2), push(&[&a]));
    assert!(store_requests(&mut s).is_empty());
    assert!(!s.fetch.is_pending(&a.id()));
    assert_eq!(s.stats().pushed_dropped, 1);

    // Once a's write is done, the peer may push again.
    let ticket = reqs[0].0;
    let store = MemOpStore::new(|| T0);
    let write = reqs.into_iter().next().unwrap().1;
    s.handle_store_response(T0, ticket, block_on(perform(&store, write)));
    assert_eq!(s.state_sizes().push_writing, 0);
    assert_eq!(s.state_sizes().pushed_writing, 0);
    let e = events(&mut s);
    assert!(
        e.iter()
            .any(|e| matches!(e, SpaceEvent::OpReceived { op_id, .. } if *op_id == a.id())),
        "{e:?}"
    );
    s.handle_frame(T0, peer_url(1), push(&[&c]));
    assert!(
        matches!(&store_requests(&mut s)[..], [(_, StoreRequest::Write(m))] if m[0].op_id == c.id())
    );

    // Wrong data: misbehaviour, nothing written, not even the good op before it.
    let d = op(4, 100);
    let wrong = encode_fetch_response(
        &space_id(),
        &[(d.id(), d.encode()), (op(5, 100).id(), op(6, 100).encode())],
    );
    s.handle_frame(T0, peer_url(1), wrong);
    assert!(store_requests(&mut s).is_empty());
    assert_eq!(s.stats().misbehaved, 1);

    // Outside the arc: dropped.
    let mut t = knowing_peer_1(SpaceConfig {
        storage_arc: DhtArc::Empty,
        ..SpaceConfig::new(space_id())
    });
    t.handle_frame(T0, peer_url(1), push(&[&c]));
    assert!(store_requests(&mut t).is_empty());
    assert_eq!(t.stats().pushed_dropped, 1);
}

/// At most [`MAX_RECEIVED_WRITES_IN_FLIGHT`] writes of received ops are with the store; the
/// rest wait in the space, oldest first, so a local publish's write (which never waits) is
/// not queued behind them in IndexedDB. The held ones then go to the store as one write.
#[test]
fn received_writes_wait_for_the_store_and_local_writes_do_not() {
    let mut s = knowing_peer_1(SpaceConfig::new(space_id()));
    let ops: Vec<Op> = (0..4u8)
        .map(|i| Op::new(T0, vec![i; 100]).unwrap())
        .collect();
    for o in &ops {
        let frame = encode_fetch_response(&space_id(), &[(o.id(), o.encode())]);
        s.handle_frame(T0, peer_url(1), frame);
    }
    let written = |reqs: &[(StoreTicket, StoreRequest)]| -> Vec<OpId> {
        reqs.iter()
            .filter_map(|(_, r)| write_ids(r))
            .flatten()
            .collect()
    };
    let with_store = store_requests(&mut s);
    assert_eq!(written(&with_store), vec![ops[0].id()]);
    assert_eq!(s.store_pending(), 4, "one with the store, three held");
    let local = s.publish(T0, &b"local"[..]).unwrap();
    assert_eq!(written(&store_requests(&mut s)), vec![local.op_id]);

    let store = MemOpStore::new(|| T0);
    let (writes, received) = answer_store(&mut s, &store, with_store);
    let all: Vec<OpId> = ops.iter().map(Op::id).collect();
    assert_eq!(
        writes.concat(),
        all,
        "held writes go to the store oldest first"
    );
    assert_eq!(writes.len(), 2, "the three held writes went as one");
    assert_eq!(
        (received, s.store_pending()),
        (all, 1),
        "the local write is unanswered"
    );
}

/// Answers the store requests `pending` (and those they lead to) from `store`, one at a
/// time, checking that at most [`MAX_RECEIVED_WRITES_IN_FLIGHT`] are with the store at
/// once. Returns the ids of each write, in the order they went to the store, and the
/// `OpReceived` events' ids.
fn answer_store(
    s: &mut Space,
    store: &MemOpStore,
    mut pending: Vec<(StoreTicket, StoreRequest)>,
) -> (Vec<Vec<OpId>>, Vec<OpId>) {
    let (mut writes, mut received) = (Vec::new(), Vec::new());
    while !pending.is_empty() {
        assert!(pending.len() <= MAX_RECEIVED_WRITES_IN_FLIGHT);
        let (ticket, request) = pending.remove(0);
        writes.extend(write_ids(&request));
        let r = block_on(perform(store, request));
        s.handle_store_response(T0, ticket, r);
        while let Some(o) = s.poll_output() {
            match o {
                Output::Store { ticket, request } => pending.push((ticket, request)),
                Output::Event(SpaceEvent::OpReceived { op_id, .. }) => received.push(op_id),
                _ => {}
            }
        }
    }
    (writes, received)
}

/// The op ids a [`StoreRequest::Write`] writes, in its order; `None` for any other request.
fn write_ids(request: &StoreRequest) -> Option<Vec<OpId>> {
    match request {
        StoreRequest::Write(m) => Some(m.iter().map(|m| m.op_id.clone()).collect()),
        _ => None,
    }
}

/// An op received again while its first copy waits to be written (the same unrequested
/// fetch response twice: a push) is dropped, so the merged write of the held ones holds it
/// once, and it is reported once. Were it written twice, the store would keep it once
/// (`duplicates_are_stored_once_and_returned_once`) and [`Space::on_fetched_written`]
/// would still report it once.
#[test]
fn an_op_received_again_while_held_is_written_and_reported_once() {
    let mut s = knowing_peer_1(SpaceConfig::new(space_id()));
    let (a, b) = (
        Op::new(T0, vec![1; 100]).unwrap(),
        Op::new(T0, vec![2; 100]).unwrap(),
    );
    for o in [&a, &b, &b] {
        let frame = encode_fetch_response(&space_id(), &[(o.id(), o.encode())]);
        s.handle_frame(T0, peer_url(1), frame);
    }
    let store = MemOpStore::new(|| T0);
    let pending = store_requests(&mut s);
    let (writes, received) = answer_store(&mut s, &store, pending);
    assert_eq!(writes.concat(), vec![a.id(), b.id()]);
    assert_eq!(s.stats().pushed_dropped, 1, "the second copy of b");
    assert_eq!(received, vec![a.id(), b.id()]);
    assert_eq!(s.stats().ops_received, 2);
    let totals = block_on(crate::api::op_store::OpStore::query_totals(&store));
    assert_eq!(totals.unwrap().op_count, 2);
}

/// splitmix64, for a deterministic churn.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How a simulated peer's current life ends.
#[derive(Clone, Copy)]
enum End {
    Tombstone,
    Silent,
    Reload,
}

struct Life {
    key: AgentKey,
    url: Url,
    ends_at: i64,
    end: End,
}

/// The simulated swarm around one local space.
struct Churn {
    space: Space,
    store: MemOpStore,
    rng: Rng,
    now: Timestamp,
    lives: Vec<Life>,
    next_url: u64,
    urls_seen: HashSet<Url>,
    ops: HashMap<OpId, Bytes>,
    max: StateSizes,
    max_live: usize,
}

impl Churn {
    fn new(cfg: SpaceConfig) -> Churn {
        Churn {
            space: local(cfg),
            store: MemOpStore::new(|| T0),
            rng: Rng(8),
            now: T0,
            lives: Vec::new(),
            next_url: 1,
            urls_seen: HashSet::new(),
            ops: HashMap::new(),
            max: StateSizes::default(),
            max_live: 0,
        }
    }

    fn new_url(&mut self) -> Url {
        self.next_url += 1;
        let u = peer_url(self.next_url);
        self.urls_seen.insert(u.clone());
        u
    }

    fn join(&mut self, n: u64) {
        let key = key(n);
        let url = self.new_url();
        let i = info(&key, self.now, Some(url.clone()));
        self.space.insert_agent_infos(self.now, vec![i]);
        self.begin_life(key, url);
    }

    fn begin_life(&mut self, key: AgentKey, url: Url) {
        let ends_at = self.now.0 + (60 + self.rng.below(540) as i64) * SEC;
        let end = match self.rng.below(3) {
            0 => End::Tombstone,
            1 => End::Silent,
            _ => End::Reload,
        };
        self.lives.push(Life {
            key,
            url,
            ends_at,
            end,
        });
    }

    fn end_lives(&mut self) {
        let now = self.now;
        let (ended, kept): (Vec<Life>, Vec<Life>) =
            self.lives.drain(..).partition(|l| l.ends_at <= now.0);
        self.lives = kept;
        for l in ended {
            self.space.peer_disconnected(now, &l.url);
            match l.end {
                End::Tombstone => {
                    let t = tombstone(&l.key, now);
                    self.space.insert_agent_infos(now, vec![t]);
                }
                End::Silent => {}
                End::Reload => {
                    let url = self.new_url();
                    let i = info(&l.key, now, Some(url.clone()));
                    self.space.insert_agent_infos(now, vec![i]);
                    self.begin_life(l.key, url);
                }
            }
        }
    }

    /// Some traffic from a random live peer: an announcement, a fetch request, a gossip
    /// initiate, or (rarely) garbage, which gets it blocked.
    fn traffic(&mut self) {
        if self.lives.is_empty() {
            return;
        }
        let from = self.lives[self.rng.below(self.lives.len() as u64) as usize]
            .url
            .clone();
        let now = self.now;
        let frame = match self.rng.below(20) {
            0..=5 => {
                let op = Op::new(now, self.rng.next().to_le_bytes().to_vec()).unwrap();
                self.ops.insert(op.id(), op.encode());
                encode_publish_ops(&space_id(), &[op.id()])
            }
            6..=8 => encode_fetch_request(&space_id(), &[OpId::from_bytes(vec![1u8; 32])]),
            9..=17 => encode_gossip(
                &space_id(),
                &GossipMsg::Initiate(K2GossipInitiateMessage {
                    session_id: Bytes::from(self.rng.next().to_le_bytes().to_vec()),
                    arc_set: Some(ArcSetMessage {
                        value: DhtArc::FULL.to_sector_set().to_vec(),
                    }),
                    // Ops of the last minute: lookups stay small.
                    new_since: now.0 - 60 * SEC,
                    max_op_data_bytes: 1 << 20,
                    ..Default::default()
                }),
            ),
            18 => Bytes::from_static(b"\xff\xfe not a frame"),
            _ => {
                self.space.peer_disconnected(now, &from);
                return;
            }
        };
        self.space.handle_frame(now, from, frame);
    }

    /// Carries out every output and runs waiting gossip; simulated peers answer gossip and
    /// fetch requests.
    fn drain(&mut self) {
        loop {
            self.drain_outputs();
            if !self.space.gossip_ready() {
                return;
            }
            block_on(self.space.run_gossip(&self.store, self.now));
        }
    }

    fn drain_outputs(&mut self) {
        let now = self.now;
        let mut replies = Vec::new();
        while let Some(o) = self.space.poll_output() {
            match o {
                Output::Send {
                    ticket, to, frame, ..
                } => {
                    let ok = self.rng.below(20) != 0;
                    let r = if ok { Ok(()) } else { Err("gone".into()) };
                    self.space.handle_send_result(now, ticket, r);
                    if ok && let Some(reply) = self.answer(frame) {
                        replies.push((to, reply));
                    }
                }
                Output::Store { ticket, request } => {
                    let r = block_on(perform(&self.store, request));
                    self.space.handle_store_response(now, ticket, r);
                }
                Output::Close { .. } | Output::Event(_) => {}
            }
            if self.space.poll_output_is_empty() {
                for (from, f) in replies.drain(..) {
                    self.space.handle_frame(now, from, f);
                }
            }
        }
    }

    /// A live peer's answer to a frame we sent it: fetched op data, `Accept` to our
    /// `Initiate`, `NoDiff` to our `Accept`.
    fn answer(&mut self, frame: Bytes) -> Option<Bytes> {
        let now = self.now.0;
        let some_ids: Vec<Bytes> = self.ops.keys().take(2).map(|i| i.0.0.clone()).collect();
        match WireMessage::decode(frame).ok()? {
            WireMessage::Fetch {
                msg: FetchMsg::Request(ids),
                ..
            } => {
                let found: Vec<(OpId, Bytes)> = ids
                    .into_iter()
                    .filter_map(|id| self.ops.get(&id).map(|d| (id, d.clone())))
                    .collect();
                Some(encode_fetch_response(&space_id(), &found))
            }
            WireMessage::Gossip {
                msg: GossipMsg::Initiate(m),
                ..
            } => Some(encode_gossip(
                &space_id(),
                &GossipMsg::Accept(K2GossipAcceptMessage {
                    session_id: m.session_id,
                    arc_set: Some(ArcSetMessage {
                        value: DhtArc::FULL.to_sector_set().to_vec(),
                    }),
                    new_since: now - 60 * SEC,
                    max_op_data_bytes: 1 << 20,
                    new_ops: some_ids,
                    updated_new_since: now,
                    ..Default::default()
                }),
            )),
            WireMessage::Gossip {
                msg: GossipMsg::Accept(m),
                ..
            } => Some(encode_gossip(
                &space_id(),
                &GossipMsg::NoDiff(K2GossipNoDiffMessage {
                    session_id: m.session_id,
                    accept_response: Some(AcceptResponseMessage {
                        new_ops: some_ids,
                        updated_new_since: now,
                        ..Default::default()
                    }),
                    cannot_compare: true,
                }),
            )),
            _ => None,
        }
    }

    fn record(&mut self, count_live: bool) {
        let s = self.space.state_sizes();
        let m = &mut self.max;
        let up = |a: &mut usize, b: usize| *a = (*a).max(b);
        up(&mut m.peer_store.agents, s.peer_store.agents);
        up(&mut m.peer_store.graves, s.peer_store.graves);
        up(&mut m.peer_store.blocked, s.peer_store.blocked);
        up(&mut m.peer_store.unresponsive, s.peer_store.unresponsive);
        up(&mut m.gossip_peers, s.gossip_peers);
        up(&mut m.gossip_inbox, s.gossip_inbox);
        up(&mut m.known_peers, s.known_peers);
        up(&mut m.tally_peers, s.tally_peers);
        up(&mut m.serving, s.serving);
        up(&mut m.fetch_pending, s.fetch_pending);
        up(&mut m.fetch_queued_peers, s.fetch_queued_peers);
        up(&mut m.fetch_suspended, s.fetch_suspended);
        up(&mut m.broadcasts, s.broadcasts);
        up(&mut m.store_pending, s.store_pending);
        up(&mut m.sends, s.sends);
        up(&mut m.recent, s.recent);
        if count_live {
            let live = self.space.peer_store().live(self.now).len();
            self.max_live = self.max_live.max(live);
        }
    }
}

impl Space {
    /// Whether no output is queued (test helper: deliver peers' replies between drains).
    fn poll_output_is_empty(&self) -> bool {
        self.out.is_empty() && self.local_batch.is_empty()
    }
}

/// Deliverable 6 of issue 8: 10 000 peers join and leave over three simulated hours
/// (tombstones, silent expiry, reloads with a new URL, disconnects, misbehaviour, traffic of
/// every kind); every map keyed by a peer URL, agent, op or ticket stays bounded by the
/// live peers or by its configured cap, never by the peers ever seen.
#[test]
fn per_peer_state_stays_bounded_while_10_000_peers_join_and_leave() {
    const PEERS: u64 = 10_000;
    const RUN: i64 = 3 * 3600;
    let mut cfg = SpaceConfig::new(space_id());
    cfg.peer_store.max_agents = 2_000;
    cfg.peer_store.max_graves = 500;
    cfg.peer_store.max_blocked = 100;
    cfg.recently_stored = 1_000;
    cfg.gossip.fast_interval = Duration::from_secs(2);
    cfg.gossip.steady_interval = Duration::from_secs(2);
    let mut c = Churn::new(cfg);
    // Steps of 10 s of virtual time (the prune interval), a few frames each: cheap enough
    // for a debug build.
    const STEP: i64 = 10;
    let mut joined = 0u64;
    for sec in (0..=RUN).step_by(STEP as usize) {
        c.now = T0.add_micros(sec * SEC);
        while joined < PEERS && (joined as i64) * RUN < sec * PEERS as i64 {
            joined += 1;
            c.join(joined);
        }
        c.end_lives();
        if sec % 20 == 0 {
            c.space.publish(c.now, sec.to_le_bytes().to_vec()).unwrap();
        }
        for _ in 0..8 {
            c.traffic();
        }
        c.drain();
        while c.space.poll_timeout().is_some_and(|t| t <= c.now) {
            c.space.handle_timeout(c.now);
            c.drain();
        }
        c.record(sec % 60 == 0);
    }
    assert_eq!(joined, PEERS);
    let m = c.max;
    let seen = c.urls_seen.len();
    assert!(seen > 13_000, "{seen} URLs: reloads give peers new URLs");
    // The swarm at any one time (with an info lifetime of 20 min and about one join a
    // second, about 1 000 infos are live at once), not everyone ever seen (over 13 000 URLs).
    let live = c.max_live;
    assert!(live < 1_500, "at most {live} live peers");
    let per_peer = [
        ("peer_store.unresponsive", m.peer_store.unresponsive),
        // Four per-peer maps of gossip plus the space's "last tried".
        ("gossip_peers / 5", m.gossip_peers / 5),
        ("tally_peers", m.tally_peers),
        ("serving", m.serving),
        ("fetch_queued_peers", m.fetch_queued_peers),
        ("fetch_suspended", m.fetch_suspended),
    ];
    // Every bound is checked and every violation listed, so a broken rule shows all it breaks.
    let mut broken = Vec::new();
    for (name, n) in per_peer {
        if n > 2_000 {
            broken.push(format!("{name} grew to {n} (live peers at most {live})"));
        }
    }
    let capped = [
        ("peer_store.agents", m.peer_store.agents, 2_000),
        ("peer_store.graves", m.peer_store.graves, 500),
        ("peer_store.blocked", m.peer_store.blocked, 100),
        ("recent", m.recent, 1_000),
        ("known_peers", m.known_peers, 32),
        ("gossip_inbox", m.gossip_inbox, 64),
        ("fetch_pending", m.fetch_pending, 2_000),
        ("broadcasts", m.broadcasts, 2_000),
    ];
    for (name, n, cap) in capped {
        if n > cap {
            broken.push(format!("{name} grew to {n}, cap {cap}"));
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
    // Something to prune was there: the churn exercised each map.
    assert!(m.gossip_peers > 250, "{m:?}");
    // (Unresponsive marks now come from membership only; these peers never answer it.)
    assert!(m.tally_peers > 50, "{m:?}");
    assert!(
        m.peer_store.graves == 500 && m.peer_store.blocked == 100,
        "{m:?}"
    );
    let end = c.space.state_sizes();
    assert_eq!((end.store_pending, end.sends), (0, 0), "{end:?}");
}

/// A signer that fails once `broken` is set (a key store that went away).
struct FlakySigner(AgentKey, std::rc::Rc<std::cell::Cell<bool>>);

impl Signer for FlakySigner {
    fn sign(&self, info: &AgentInfo, message: &[u8]) -> Result<Bytes, AgentError> {
        if self.1.get() {
            return Err(AgentError::Signing("key store gone".into()));
        }
        self.0.sign(info, message)
    }
}

/// Deliverable 7 of issue 8: a failed re-sign is an event and a counter, not silence (the
/// info would otherwise expire unnoticed); a full publish pool is reported, not dropped.
#[test]
fn a_failed_re_sign_and_a_full_publish_pool_are_reported() {
    let broken = std::rc::Rc::new(std::cell::Cell::new(false));
    let k = key(3);
    let signer = FlakySigner(k.clone(), broken.clone());
    let mut cfg = SpaceConfig::new(space_id());
    cfg.publish.max_broadcasts = 1;
    let mut s = Space::new(
        cfg,
        Box::new(signer),
        k.agent_id(),
        Some(peer_url(0)),
        T0,
        1,
    )
    .unwrap();
    s.insert_agent_infos(T0, vec![info(&key(4), T0, Some(peer_url(4)))]);
    while s.poll_output().is_some() {}
    // Two publishes; the first broadcast waits for its send result and fills the pool.
    let first = s.publish(T0, &b"one"[..]).unwrap();
    let (w1, r1) = next_store(&mut s);
    let store = MemOpStore::new(|| T0);
    s.handle_store_response(T0, w1, block_on(perform(&store, r1)));
    let mut e = events(&mut s);
    let second = s.publish(T0, &b"two"[..]).unwrap();
    let (w2, r2) = next_store(&mut s);
    s.handle_store_response(T0, w2, block_on(perform(&store, r2)));
    e.extend(events(&mut s));
    assert!(e.contains(&SpaceEvent::OpStored {
        token: first.token,
        op_id: first.op_id
    }));
    assert!(e.contains(&SpaceEvent::Error(SpaceError::PublishPoolFull {
        op_id: second.op_id
    })));
    assert_eq!(s.stats().announce_refused, 1);
    // The key store breaks; the re-sign before expiry fails and says so, every time.
    broken.set(true);
    let resign = s
        .local_agent_info()
        .expires_at
        .add_micros(-crate::model::agent::RE_SIGN_MARGIN_US);
    s.handle_timeout(resign);
    let e = events(&mut s);
    assert!(
        e.iter()
            .any(|e| matches!(e, SpaceEvent::Error(SpaceError::Sign(_)))),
        "{e:?}"
    );
    assert_eq!(s.stats().sign_failures, 1);
}

/// Deliverable 9 of issue 8: a bad config is refused with the field's name, not clamped.
#[test]
fn an_invalid_config_is_refused_naming_the_field() {
    assert_eq!(SpaceConfig::new(space_id()).validate(), Ok(()));
    let bad = |f: &dyn Fn(&mut SpaceConfig)| {
        let mut c = SpaceConfig::new(space_id());
        f(&mut c);
        c.validate().unwrap_err().field
    };
    assert_eq!(
        bad(&|c| c.fetch.request_timeout = Duration::ZERO),
        "fetch.request_timeout"
    );
    assert_eq!(
        bad(&|c| c.fetch.suspend_timeout = Duration::ZERO),
        "fetch.suspend_timeout"
    );
    assert_eq!(
        bad(&|c| c.publish.max_ids_per_message = 0),
        "publish.max_ids_per_message"
    );
    assert_eq!(
        bad(&|c| c.gossip.round_timeout = Duration::ZERO),
        "gossip.round_timeout"
    );
    assert_eq!(
        bad(&|c| c.max_response_frame_bytes = MAX_FRAME_BYTES + 1),
        "max_response_frame_bytes"
    );
    assert_eq!(
        bad(&|c| c.peer_store.max_agents = 0),
        "peer_store.max_agents"
    );
    assert_eq!(
        bad(&|c| c.storage_arc = DhtArc::Arc(0, u32::MAX / 3)),
        "storage_arc"
    );
    let mut c = SpaceConfig::new(space_id());
    c.prune_interval = Duration::ZERO;
    let k = key(5);
    let e = Space::new(c, Box::new(k.clone()), k.agent_id(), None, T0, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "config field `prune_interval` must be at least 1 µs"
    );
}

/// A storage arc that cuts a sector is refused (Kitsune2's rule for gossip arcs) and the
/// signed info stays as it was; a whole-sector arc is taken.
#[test]
fn set_storage_arc_takes_whole_sectors_only() {
    let k = key(5);
    let mut s = Space::new(
        SpaceConfig::new(space_id()),
        Box::new(k.clone()),
        k.agent_id(),
        None,
        T0,
        1,
    )
    .unwrap();
    let before = s.local_agent_info().clone();
    let third = DhtArc::Arc(0, u32::MAX / 3);
    assert_eq!(
        s.set_storage_arc(T0, third),
        Err(StorageArcError::NotSectorAligned {
            arc: third,
            cover: DhtArc::of_sectors(0, 170),
        })
    );
    assert_eq!(s.local_agent_info(), &before);
    let half = DhtArc::of_sectors(0, 255);
    s.set_storage_arc(T0, half).unwrap();
    assert_eq!(s.local_agent_info().storage_arc, half);
}

/// Issue 9, deliverable 5: while our own connection is down, an announcement fails and marks
/// the peer unresponsive, and a later op has nobody to go to; once the link is back,
/// [`Space::reconnected`] clears the marks and announces both ops to the peer again.
#[test]
fn after_a_reconnect_unannounced_ops_are_announced_again() {
    let mut s = local(SpaceConfig::new(space_id()));
    let store = MemOpStore::new(|| T0);
    s.insert_agent_infos(T0, vec![info(&key(4), T0, Some(peer_url(4)))]);
    while s.poll_output().is_some() {}
    let publish = |s: &mut Space, payload: &'static [u8], now: Timestamp| {
        let p = s.publish(now, payload).unwrap();
        let (w, r) = next_store(s);
        s.handle_store_response(now, w, block_on(perform(&store, r)));
        p.op_id
    };
    // Every send fails while the link is down (after the publish linger).
    let sends_to_4 = |s: &mut Space, now: Timestamp, ok: bool| {
        s.handle_timeout(now);
        let mut n = 0;
        while let Some(o) = s.poll_output() {
            if let Output::Send { ticket, to, .. } = o {
                assert_eq!(to, peer_url(4));
                n += 1;
                let r = if ok {
                    Ok(())
                } else {
                    Err("signal closed".into())
                };
                s.handle_send_result(now, ticket, r);
            }
        }
        n
    };
    // A failed send is no liveness evidence (membership is): nothing is marked unresponsive,
    // and a failed announcement is not retried by the publish pool on its own.
    let first = publish(&mut s, b"one", T0);
    let t1 = T0.add_micros(SEC);
    assert!(sends_to_4(&mut s, t1, false) >= 1);
    let second = publish(&mut s, b"two", t1);
    let t2 = t1.add_micros(SEC);
    assert!(sends_to_4(&mut s, t2, false) >= 1);
    assert_eq!(
        sends_to_4(&mut s, t2.add_micros(SEC), false),
        0,
        "nothing is announced again before the reconnect"
    );
    assert_eq!(s.stats().unresponsive_marks, 0);

    s.reconnected(t2, vec![first, second]);
    let t3 = t2.add_micros(2 * SEC);
    assert!(
        sends_to_4(&mut s, t3, true) >= 1,
        "announced again after the reconnect"
    );
}

/// A peer asking faster than our responses to it are sent finds at most one response over
/// `max_unsent_response_bytes_per_peer` queued for it: later requests wait (up to
/// `max_serving_per_peer`) and are served as sends complete; more are dropped. The ops come
/// from memory (`OpCache`), which no store-read bound covered before.
#[test]
fn a_peer_asking_faster_than_its_responses_go_out_waits_for_them() {
    let mut cfg = SpaceConfig::new(space_id());
    cfg.max_unsent_response_bytes_per_peer = 1_000;
    cfg.max_serving_per_peer = 2;
    let store = MemOpStore::new(|| T0);
    let mut s = knowing_peer_1(cfg);
    let ids: Vec<OpId> = (0..3u8)
        .map(|k| s.publish(T0, Bytes::from(vec![k; 600])).unwrap().op_id)
        .collect();
    while let Some(o) = s.poll_output() {
        match o {
            Output::Store { ticket, request } => {
                let r = block_on(perform(&store, request));
                s.handle_store_response(T0, ticket, r);
            }
            Output::Send { ticket, .. } => s.handle_send_result(T0, ticket, Ok(())),
            _ => {}
        }
    }
    // Ten requests for the three ops (~1.9 KB a response), no send result yet.
    let ask = encode_fetch_request(&space_id(), &ids);
    for _ in 0..10 {
        s.handle_frame(T0, peer_url(1), ask.clone());
    }
    let responses = |s: &mut Space| -> Vec<SendTicket> {
        std::iter::from_fn(|| s.poll_output())
            .filter_map(|o| match o {
                Output::Send { ticket, frame, .. } => {
                    let msg = WireMessage::decode(frame).unwrap();
                    if matches!(msg, WireMessage::Membership { .. }) {
                        return None; // SWIM greets the peer that fetched
                    }
                    let served = matches!(&msg, WireMessage::Fetch { msg: FetchMsg::Response(ops), .. } if ops.len() == 3);
                    assert!(served, "only responses go out: {msg:?}");
                    Some(ticket)
                }
                Output::Store { .. } => panic!("every op is in memory"),
                _ => None,
            })
            .collect()
    };
    let first = responses(&mut s);
    assert_eq!(first.len(), 1, "the first response is over the budget");
    let st = s.stats();
    assert_eq!((st.requests_held, st.requests_dropped), (2, 7));
    assert_eq!(st.ops_served_from_memory, 3);
    let mut sent = first;
    let mut total = 1;
    while let Some(t) = sent.pop() {
        s.handle_send_result(T0, t, Ok(()));
        sent = responses(&mut s);
        assert!(sent.len() <= 1, "one held request per completed send");
        total += sent.len();
    }
    assert_eq!(total, 3, "the two held requests were served");
    assert_eq!(s.stats().ops_served_from_memory, 9);
    assert_eq!(s.state_sizes().serving, 0, "nothing left for that peer");
    s.handle_frame(T0, peer_url(1), encode_fetch_request(&space_id(), &[]));
    assert!(responses(&mut s).is_empty());
    assert_eq!(
        s.state_sizes().serving,
        0,
        "an empty request leaves nothing"
    );
}
