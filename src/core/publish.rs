//! Publishing: telling the peers responsible for an op that we hold it, so they fetch it
//! (or, for a small batch of fresh ops, handing them the data itself: the space turns a
//! [`PublishOutput::SendOps`] into a push, `SpaceConfig::push_max_bytes`).
//!
//! Kitsune2's `CorePublish` (`crates/core/src/factories/core_publish.rs`, report §5.2) sends a
//! `PublishOps` message of op ids to targets the host picked, skipping unresponsive ones, with
//! no retry; the receivers pull the data through their fetch queue. fennec keeps that wire
//! behaviour and runs it as a pool of per-op broadcast state machines after zikade's `brdcst`
//! (`internal/coord/brdcst/{pool,static}.go`, membership report §3):
//!
//! - [`BroadcastPool::start`] begins a **Static** broadcast of one op to a known target list:
//!   the first [`PublishConfig::target_count`] candidates are contacted, the rest are a reserve;
//! - each `(op, peer)` pair moves `todo → waiting → success | failed`, as in `static.go`;
//! - pairs are **batched per peer**: after [`PublishConfig::linger`], every pending pair is
//!   grouped into one `PublishOps` per peer (at most [`PublishConfig::max_ids_per_message`] ids);
//! - the driver reports each batch's send result; a failure, or no result within
//!   [`PublishConfig::send_timeout`], fails the pairs and (for timeouts) reports the peer as
//!   unresponsive; a failed target is replaced from the reserve, at most
//!   [`PublishConfig::max_retries`] times per op (brdcst has no retries);
//! - when nothing is left to do, [`PublishOutput::Finished`] says who was reached.
//!
//! [`candidates`] picks the targets: live peers whose storage arc holds the op's location
//! (Kitsune2 §2.6 / Holochain's `get_near_location`), ordered by rendezvous hashing of
//! `(op id, peer URL)`, so load spreads evenly over peers with equal arcs and every publisher
//! picks the same order. [`agent_targets`] lists every reachable peer, for `PublishAgent`
//! (Kitsune2 `CoreSpace` sends each newly signed local info to every known peer).

use std::time::Duration;

use crate::core::config::{ConfigError, at_least_one, positive};
use crate::hash::HashMap;
use std::collections::VecDeque;

use crate::core::peer_store::PeerStore;
use crate::model::arc::DhtArc;
use crate::model::id::{AgentId, OpId};
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::sort;

/// Limits of a [`BroadcastPool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishConfig {
    /// Peers contacted per op. Default 16: in a swarm of up to 17 full-arc tabs every peer is
    /// a target and sees a new op within a round trip; in a larger one the rest is left to
    /// gossip. Data is pulled from the author by each target, so this bounds the author's
    /// upload to 16 copies. With 8 (the default before), 16 tabs of `npm start` converged in
    /// 44.3 and 48.0 s at 1.71 and 2.18x the dataset received a tab (half the peers got each
    /// op by gossip rounds); with 16, in 30.7 and 31.9 s at 1.37 and 1.36x (interleaved runs).
    pub target_count: usize,
    /// Most op ids in one `PublishOps` message. Default 1 024 (about 36 KiB).
    pub max_ids_per_message: usize,
    /// How long a pending `(op, peer)` pair waits for others to the same peer before the
    /// batch goes out. Default 10 ms.
    pub linger: Duration,
    /// A batch without a send result after this long has failed. Default 30 s.
    pub send_timeout: Duration,
    /// Failed targets replaced from the reserve, per op. Default 2.
    pub max_retries: usize,
    /// Most broadcasts running at once; [`BroadcastPool::start`] refuses more. Default
    /// 100 000.
    pub max_broadcasts: usize,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            target_count: 16,
            max_ids_per_message: 1024,
            linger: Duration::from_millis(10),
            send_timeout: Duration::from_secs(30),
            max_retries: 2,
            max_broadcasts: 100_000,
        }
    }
}

impl PublishConfig {
    /// Checks every field (paths as inside [`crate::core::space::SpaceConfig`]).
    /// `target_count` 0 is allowed: ops are then left to catch-up.
    ///
    /// # Errors
    /// The first field that is zero where at least 1 is needed, or a zero timeout.
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least_one(
            "publish.max_ids_per_message",
            self.max_ids_per_message as u64,
        )?;
        positive("publish.send_timeout", self.send_timeout)?;
        at_least_one("publish.max_broadcasts", self.max_broadcasts as u64)
    }
}

/// Why [`BroadcastPool::start`] started nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The op is being broadcast already.
    #[error("the op is being announced already")]
    AlreadyRunning,
    /// [`PublishConfig::max_broadcasts`] broadcasts are running.
    #[error("the publish pool is full")]
    PoolFull,
}

/// Identifies one `PublishOps` message sent by the pool.
pub type BatchId = u64;

/// What the pool asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutput {
    /// Send `PublishOps(op_ids)` to `peer` ([`crate::wire::encode_publish_ops`]) and report the
    /// outcome with [`BroadcastPool::send_result`].
    SendOps {
        /// The batch, for [`BroadcastPool::send_result`].
        batch: BatchId,
        /// Where to send it.
        peer: Url,
        /// The announced op ids.
        op_ids: Vec<OpId>,
    },
    /// A batch to `peer` got no send result in time: treat the peer as unresponsive.
    Timeout {
        /// The silent peer.
        peer: Url,
    },
    /// The broadcast of `op_id` is over.
    Finished {
        /// The op.
        op_id: OpId,
        /// Peers the announcement was delivered to.
        reached: Vec<Url>,
        /// Peers it failed for.
        failed: Vec<Url>,
    },
}

#[derive(Debug, Clone, Default)]
struct Broadcast {
    todo: Vec<Url>,
    waiting: Vec<(Url, BatchId)>,
    reached: Vec<Url>,
    failed: Vec<Url>,
    reserve: VecDeque<Url>,
    retries_left: usize,
}

#[derive(Debug, Clone)]
struct Batch {
    peer: Url,
    op_ids: Vec<OpId>,
    deadline: Timestamp,
}

/// A pool of Static broadcasts, one per op (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct BroadcastPool {
    cfg: PublishConfig,
    /// A hash map (a B-tree map type is ~10 KB of wasm, a hash map type ~2 KB): every walk
    /// over it goes in op id order through [`ids`](Self::ids) or a sort.
    broadcasts: HashMap<OpId, Broadcast>,
    /// Also a hash map: batch ids taken out of it are sorted ([`batch_ids`](Self::batch_ids)).
    batches: HashMap<BatchId, Batch>,
    flush_at: Option<Timestamp>,
    out: VecDeque<PublishOutput>,
    next_batch: BatchId,
}

impl BroadcastPool {
    /// An empty pool.
    pub fn new(cfg: PublishConfig) -> Self {
        BroadcastPool {
            cfg,
            broadcasts: HashMap::default(),
            batches: HashMap::default(),
            flush_at: None,
            out: VecDeque::new(),
            next_batch: 1,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PublishConfig {
        &self.cfg
    }

    /// Number of broadcasts running.
    pub fn len(&self) -> usize {
        self.broadcasts.len()
    }

    /// Whether no broadcast is running.
    pub fn is_empty(&self) -> bool {
        self.broadcasts.is_empty()
    }

    /// Starts broadcasting `op_id` to `candidates` (best first, e.g. from [`candidates`]).
    /// With no candidates the broadcast finishes at once, having reached nobody.
    ///
    /// # Errors
    /// Doing nothing: [`StartError::AlreadyRunning`] if the op is being broadcast (its
    /// running broadcast covers it), [`StartError::PoolFull`] if
    /// [`PublishConfig::max_broadcasts`] are running (the op is then not announced; catch-up
    /// still offers it).
    pub fn start(
        &mut self,
        now: Timestamp,
        op_id: OpId,
        candidates: Vec<Url>,
    ) -> Result<(), StartError> {
        if self.broadcasts.contains_key(&op_id) {
            return Err(StartError::AlreadyRunning);
        }
        if self.broadcasts.len() >= self.cfg.max_broadcasts {
            return Err(StartError::PoolFull);
        }
        let mut reserve: VecDeque<Url> = VecDeque::new();
        for c in candidates {
            if !reserve.contains(&c) {
                reserve.push_back(c);
            }
        }
        let n = self.cfg.target_count.min(reserve.len());
        let todo: Vec<Url> = reserve.drain(..n).collect();
        let b = Broadcast {
            todo,
            reserve,
            retries_left: self.cfg.max_retries,
            ..Default::default()
        };
        let has_todo = !b.todo.is_empty();
        self.broadcasts.insert(op_id.clone(), b);
        if has_todo {
            self.schedule_flush(now);
        } else {
            self.check_finished(&op_id);
        }
        Ok(())
    }

    /// Stops the broadcast of `op_id`: pending targets count as failed, and it finishes.
    pub fn stop(&mut self, op_id: &OpId) {
        if let Some(b) = self.broadcasts.get_mut(op_id) {
            let todo = std::mem::take(&mut b.todo);
            b.failed.extend(todo);
            let waiting = std::mem::take(&mut b.waiting);
            b.failed.extend(waiting.into_iter().map(|(u, _)| u));
            b.reserve.clear();
            self.check_finished(op_id);
        }
    }

    /// The ids of the batches matching `keep`, oldest first.
    fn batch_ids(&self, keep: impl Fn(&Batch) -> bool) -> Vec<BatchId> {
        let mut ids: Vec<BatchId> = self
            .batches
            .iter()
            .filter(|(_, b)| keep(b))
            .map(|(id, _)| *id)
            .collect();
        sort::sort(&mut ids);
        ids
    }

    /// The running broadcasts' op ids, in order.
    fn ids(&self) -> Vec<OpId> {
        let mut ids: Vec<OpId> = self.broadcasts.keys().cloned().collect();
        sort::sort(&mut ids);
        ids
    }

    /// Stops every broadcast (see [`stop`](Self::stop)).
    pub fn stop_all(&mut self) {
        for id in self.ids() {
            self.stop(&id);
        }
    }

    /// The driver's verdict on sending `batch`: `ok` means the transport took the message.
    pub fn send_result(&mut self, now: Timestamp, batch: BatchId, ok: bool) {
        let Some(b) = self.batches.remove(&batch) else {
            return;
        };
        for id in b.op_ids {
            self.settle(now, &id, &b.peer, batch, ok);
        }
    }

    /// `peer` is unresponsive or gone: every pair with it fails (pending ones are replaced
    /// from reserves), and it is removed from every reserve.
    pub fn peer_failed(&mut self, now: Timestamp, peer: &Url) {
        for id in self.batch_ids(|b| &b.peer == peer) {
            self.send_result(now, id, false);
        }
        for id in self.ids() {
            let Some(b) = self.broadcasts.get_mut(&id) else {
                continue;
            };
            b.reserve.retain(|u| u != peer);
            if let Some(pos) = b.todo.iter().position(|u| u == peer) {
                b.todo.remove(pos);
                b.failed.push(peer.clone());
                self.replace(now, &id);
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let batch = self.batches.values().map(|b| b.deadline).min();
        match (self.flush_at, batch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends the batches that are due and fails the batches whose send result is overdue.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        for id in self.batch_ids(|b| b.deadline <= now) {
            if let Some(peer) = self.batches.get(&id).map(|b| b.peer.clone()) {
                self.out.push_back(PublishOutput::Timeout { peer });
                self.send_result(now, id, false);
            }
        }
        if self.flush_at.is_some_and(|t| t <= now) {
            self.flush(now);
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<PublishOutput> {
        self.out.pop_front()
    }

    fn schedule_flush(&mut self, now: Timestamp) {
        let at = now.plus(self.cfg.linger);
        self.flush_at = Some(self.flush_at.map_or(at, |t| t.min(at)));
    }

    /// Groups every pending pair into per-peer batches.
    fn flush(&mut self, now: Timestamp) {
        self.flush_at = None;
        let mut per_peer: HashMap<Url, Vec<OpId>> = HashMap::default();
        for (id, b) in self.broadcasts.iter() {
            for peer in &b.todo {
                per_peer.entry(peer.clone()).or_default().push(id.clone());
            }
        }
        let mut per_peer: Vec<(Url, Vec<OpId>)> = per_peer.into_iter().collect();
        sort::sort_by(&mut per_peer, |a, b| a.0.cmp(&b.0)); // peers in URL order, distinct
        let max = self.cfg.max_ids_per_message;
        for (peer, mut ids) in per_peer {
            sort::sort(&mut ids); // op id order, distinct ids
            for chunk in ids.chunks(max) {
                let batch = self.next_batch;
                self.next_batch += 1;
                for id in chunk {
                    if let Some(b) = self.broadcasts.get_mut(id) {
                        b.todo.retain(|u| u != &peer);
                        b.waiting.push((peer.clone(), batch));
                    }
                }
                self.batches.insert(
                    batch,
                    Batch {
                        peer: peer.clone(),
                        op_ids: chunk.to_vec(),
                        deadline: now.plus(self.cfg.send_timeout),
                    },
                );
                self.out.push_back(PublishOutput::SendOps {
                    batch,
                    peer: peer.clone(),
                    op_ids: chunk.to_vec(),
                });
            }
        }
    }

    fn settle(&mut self, now: Timestamp, id: &OpId, peer: &Url, batch: BatchId, ok: bool) {
        let Some(b) = self.broadcasts.get_mut(id) else {
            return;
        };
        let Some(pos) = b.waiting.iter().position(|(u, n)| u == peer && *n == batch) else {
            return;
        };
        b.waiting.remove(pos);
        if ok {
            b.reached.push(peer.clone());
            self.check_finished(id);
        } else {
            b.failed.push(peer.clone());
            self.replace(now, id);
        }
    }

    /// After a failure: take the next reserve target if retries are left; else maybe finish.
    fn replace(&mut self, now: Timestamp, id: &OpId) {
        let Some(b) = self.broadcasts.get_mut(id) else {
            return;
        };
        let mut scheduled = false;
        if b.retries_left > 0 {
            while let Some(next) = b.reserve.pop_front() {
                if b.failed.contains(&next) || b.reached.contains(&next) {
                    continue;
                }
                b.retries_left -= 1;
                b.todo.push(next);
                scheduled = true;
                break;
            }
        }
        if scheduled {
            self.schedule_flush(now);
        } else {
            self.check_finished(id);
        }
    }

    fn check_finished(&mut self, id: &OpId) {
        let done = self
            .broadcasts
            .get(id)
            .is_some_and(|b| b.todo.is_empty() && b.waiting.is_empty());
        if done && let Some(b) = self.broadcasts.remove(id) {
            self.out.push_back(PublishOutput::Finished {
                op_id: id.clone(),
                reached: b.reached,
                failed: b.failed,
            });
        }
    }
}

/// Rendezvous weight of `(key, peer)`: the first 8 bytes of BLAKE3 over both.
fn weight(key: &[u8], url: &Url) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(key);
    h.update(url.as_str().as_bytes());
    let mut w = [0u8; 8];
    w.copy_from_slice(&h.finalize().as_bytes()[..8]);
    u64::from_le_bytes(w)
}

/// The reachable peers ([`PeerStore::reachable`]: live info with a URL, not unresponsive, not
/// `local`) as `(URL, storage arc)`: what [`candidates`] and a remote get's holders are picked
/// from. Taken once for a batch of ops: building it walks and sorts the whole peer store.
pub fn reachable_arcs(store: &PeerStore, now: Timestamp, local: &AgentId) -> Vec<(Url, DhtArc)> {
    store
        .reachable(now, local)
        .into_iter()
        .filter_map(|a| Some((a.url.clone()?, a.storage_arc)))
        .collect()
}

/// The peers of `peers` ([`reachable_arcs`]) whose storage arc holds ring location `loc`,
/// highest rendezvous weight of `(key, url)` first (rendezvous hashing: each key prefers its
/// own few peers, and keys spread over all of them). Peers for which `skip` is true are left
/// out. Publish targets use the op id as the key and skip peers known to hold the op; a
/// remote get's holders use the asker's agent id, so one asker keeps asking the same peers.
pub fn candidates(
    peers: &[(Url, DhtArc)],
    key: &[u8],
    loc: u32,
    skip: impl Fn(&Url) -> bool,
) -> Vec<Url> {
    let mut v: Vec<(u64, &Url)> = peers
        .iter()
        .filter(|(u, arc)| arc.contains(loc) && !skip(u))
        .map(|(u, _)| (weight(key, u), u))
        .collect();
    // Unstable: equal (weight, URL) pairs are indistinguishable.
    sort::sort_by(&mut v, |a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    v.into_iter().map(|(_, u)| u.clone()).collect()
}

/// Where a newly signed local agent info goes (`PublishAgent`): every reachable peer's URL
/// ([`PeerStore::reachable`]), as Kitsune2's `CoreSpace` does.
pub fn agent_targets(store: &PeerStore, now: Timestamp, local: &AgentId) -> Vec<Url> {
    store
        .reachable(now, local)
        .into_iter()
        .filter_map(|a| a.url.clone())
        .collect()
}

/// Per-peer success and failure counts of publishing, for diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerTally {
    /// Announcements delivered, per peer.
    pub reached: HashMap<Url, u64>,
    /// Announcements failed, per peer.
    pub failed: HashMap<Url, u64>,
}

impl PeerTally {
    /// Keeps only the peers for which `keep` is true (the others left or expired).
    pub fn retain(&mut self, mut keep: impl FnMut(&Url) -> bool) {
        self.reached.retain(|u, _| keep(u));
        self.failed.retain(|u, _| keep(u));
    }

    /// Peers counted (in either map).
    pub fn len(&self) -> usize {
        self.reached.len() + self.failed.len()
    }

    /// Whether no peer is counted.
    pub fn is_empty(&self) -> bool {
        self.reached.is_empty() && self.failed.is_empty()
    }

    /// Adds a finished broadcast.
    pub fn record(&mut self, reached: &[Url], failed: &[Url]) {
        for u in reached {
            *self.reached.entry(u.clone()).or_default() += 1;
        }
        for u in failed {
            *self.failed.entry(u.clone()).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::peer_store::PeerStoreConfig;
    use crate::model::agent::{AgentInfo, AgentInfoSigned, AgentKey};
    use crate::model::id::SpaceId;

    fn url(n: u8) -> Url {
        Url::parse(&format!("ws://peer.test:80/p{n}")).unwrap()
    }
    fn oid(n: u8) -> OpId {
        OpId::from_bytes(vec![n; 32])
    }
    fn drain(p: &mut BroadcastPool) -> Vec<PublishOutput> {
        std::iter::from_fn(|| p.poll_output()).collect()
    }
    const T: Timestamp = Timestamp(1_000_000);

    fn cfg() -> PublishConfig {
        PublishConfig {
            target_count: 2,
            linger: Duration::from_micros(10),
            send_timeout: Duration::from_micros(1000),
            max_retries: 1,
            ..Default::default()
        }
    }

    /// brdcst's `TestPool_*_lifecycle` style: one event at a time, exact outputs.
    #[test]
    fn static_lifecycle_batched_per_peer_with_a_failure_replaced_from_reserve() {
        let mut p = BroadcastPool::new(cfg());
        assert_eq!(p.start(T, oid(1), vec![url(1), url(2), url(3)]), Ok(()));
        assert_eq!(p.start(T, oid(2), vec![url(1), url(3)]), Ok(()));
        assert_eq!(
            p.start(T, oid(1), vec![url(9)]),
            Err(StartError::AlreadyRunning)
        );
        assert!(drain(&mut p).is_empty(), "lingering");
        assert_eq!(p.poll_timeout(), Some(T.add_micros(10)));
        let t1 = T.add_micros(10);
        p.handle_timeout(t1);
        let out = drain(&mut p);
        assert_eq!(
            out,
            vec![
                PublishOutput::SendOps {
                    batch: 1,
                    peer: url(1),
                    op_ids: vec![oid(1), oid(2)]
                },
                PublishOutput::SendOps {
                    batch: 2,
                    peer: url(2),
                    op_ids: vec![oid(1)]
                },
                PublishOutput::SendOps {
                    batch: 3,
                    peer: url(3),
                    op_ids: vec![oid(2)]
                },
            ]
        );
        p.send_result(t1, 1, true);
        p.send_result(t1, 3, true);
        assert_eq!(
            drain(&mut p),
            vec![PublishOutput::Finished {
                op_id: oid(2),
                reached: vec![url(1), url(3)],
                failed: vec![]
            }]
        );
        // Peer 2 fails: op 1 moves on to its reserve, peer 3.
        p.send_result(t1, 2, false);
        assert!(drain(&mut p).is_empty());
        p.handle_timeout(t1.add_micros(10));
        assert_eq!(
            drain(&mut p),
            vec![PublishOutput::SendOps {
                batch: 4,
                peer: url(3),
                op_ids: vec![oid(1)]
            }]
        );
        // No send result: the batch times out, the peer is reported, retries are used up.
        p.handle_timeout(t1.add_micros(10 + 1000));
        assert_eq!(
            drain(&mut p),
            vec![
                PublishOutput::Timeout { peer: url(3) },
                PublishOutput::Finished {
                    op_id: oid(1),
                    reached: vec![url(1)],
                    failed: vec![url(2), url(3)]
                }
            ]
        );
        assert!(p.is_empty());
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn empty_seed_finishes_at_once_and_stop_cancels() {
        let mut p = BroadcastPool::new(cfg());
        p.start(T, oid(1), vec![]).unwrap();
        assert_eq!(
            drain(&mut p),
            vec![PublishOutput::Finished {
                op_id: oid(1),
                reached: vec![],
                failed: vec![]
            }]
        );
        p.start(T, oid(2), vec![url(1)]).unwrap();
        p.stop(&oid(2));
        assert_eq!(
            drain(&mut p),
            vec![PublishOutput::Finished {
                op_id: oid(2),
                reached: vec![],
                failed: vec![url(1)]
            }]
        );
        p.handle_timeout(T.add_micros(100));
        assert!(drain(&mut p).is_empty());
    }

    #[test]
    fn peer_failure_fails_pending_pairs_and_chunks_respect_the_limit() {
        let mut p = BroadcastPool::new(PublishConfig {
            max_ids_per_message: 2,
            ..cfg()
        });
        for n in 0..5 {
            p.start(T, oid(n), vec![url(1)]).unwrap();
        }
        p.handle_timeout(T.add_micros(10));
        let out = drain(&mut p);
        assert_eq!(out.len(), 3, "5 ids in chunks of 2");
        p.peer_failed(T, &url(1));
        let fin = drain(&mut p);
        assert_eq!(fin.len(), 5);
        assert!(fin.iter().all(|o| matches!(o,
            PublishOutput::Finished { reached, failed, .. } if reached.is_empty() && failed == &vec![url(1)])));
    }

    #[test]
    fn candidates_cover_the_location_and_spread_by_rendezvous() {
        let space = SpaceId::from_bytes(vec![1u8; 32]);
        let mut s = PeerStore::new(space.clone(), PeerStoreConfig::default());
        let keys: Vec<AgentKey> = (1..=6)
            .map(|n| AgentKey::from_secret_bytes(&[n; 32]))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            let arc = if i == 5 {
                DhtArc::Arc(0, 10)
            } else {
                DhtArc::FULL
            };
            let info = AgentInfo::new(k.agent_id(), space.clone(), T, Some(url(i as u8)), arc);
            s.insert(T, AgentInfoSigned::sign(k, info).unwrap());
        }
        let local = keys[0].agent_id();
        let peers = reachable_arcs(&s, T, &local);
        assert_eq!(peers.len(), 5, "every peer but the local agent");
        let c = candidates(&peers, oid(1).as_bytes(), 1000, |_| false);
        assert_eq!(c.len(), 4, "not local, not the peer whose arc misses 1000");
        assert!(!c.contains(&url(0)) && !c.contains(&url(5)));
        let c2 = candidates(&peers, oid(1).as_bytes(), 5, |u| u == &url(1));
        assert_eq!(c2.len(), 4);
        assert!(c2.contains(&url(5)) && !c2.contains(&url(1)));
        // Different ops get different first targets among equal arcs.
        let firsts: std::collections::HashSet<Url> = (0..40)
            .map(|n| candidates(&peers, oid(n).as_bytes(), 1000, |_| false)[0].clone())
            .collect();
        assert!(firsts.len() >= 3, "{firsts:?}");
        assert_eq!(agent_targets(&s, T, &local).len(), 5);
    }
}
