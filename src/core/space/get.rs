//! [`Space::get_remote`]: an op outside our storage arc, asked of the peers whose arcs hold
//! it. The request is Kitsune2's `FetchRequest` (`crates/core/src/factories/core_fetch.rs`:
//! ops are fetched from the peers that hold them by location); the op is returned to the
//! caller, not stored (our arc does not hold it, so gossip would neither keep it current
//! nor serve it). Inside our arc we are one of those peers: what we lack, gossip brings; so
//! an op of our arc is asked for only while we are catching up ([`Space::catching_up`]), as
//! a tab that just joined is asked for an op it has not fetched yet.

use std::time::Duration;

use bytes::Bytes;

use super::{SendKind, Space, SpaceEvent};
use crate::core::publish::{candidates, reachable_arcs};
use crate::model::id::OpId;
use crate::model::op::{Op, verify_op};
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::wire::encode_fetch_request;

/// Peers asked at once for one op: the first valid answer wins. 3: an op is held by every
/// peer whose arc covers its location, and one of three is likely to answer quickly.
pub const GET_PEERS: usize = 3;

/// How long a remote get waits for an answer before it reports the op not found: 5 s (a
/// peer that lacks the op sends nothing, as Kitsune2's fetch responder does).
pub const GET_TIMEOUT: Duration = Duration::from_secs(5);

/// Names one [`Space::get_remote`] in its [`SpaceEvent::Got`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GetToken(pub u64);

/// A remote get waiting for an answer.
#[derive(Debug)]
pub(super) struct RemoteGet {
    token: GetToken,
    op_id: OpId,
    asked: Vec<Url>,
    deadline: Timestamp,
}

impl Space {
    /// Looks for op `op_id` (which the caller did not find in our store) on the network; the
    /// outcome comes as [`SpaceEvent::Got`] with the returned token: the verified op, or
    /// `None` if its location is inside our storage arc while we are not
    /// [catching up](Self::catching_up) (we hold what our arc's holders hold), no reachable
    /// peer's arc holds it, or none of the [`GET_PEERS`] asked answered it within
    /// [`GET_TIMEOUT`]. The op is not stored.
    pub fn get_remote(&mut self, now: Timestamp, op_id: OpId) -> GetToken {
        let token = GetToken(self.ticket());
        let loc = self.cfg.locator.op_loc(&op_id);
        let ours = self.arc.contains(loc) && !self.catching_up();
        let asked = match self.left || ours {
            true => Vec::new(),
            false => self.holders_to_ask(now, loc),
        };
        if asked.is_empty() {
            self.emit(SpaceEvent::Got { token, op: None });
            return token;
        }
        let frame = encode_fetch_request(&self.cfg.space, std::slice::from_ref(&op_id));
        for to in &asked {
            self.send(to.clone(), frame.clone(), SendKind::Other);
        }
        self.gets.push(RemoteGet {
            token,
            op_id,
            asked,
            deadline: now.plus(GET_TIMEOUT),
        });
        self.pump(now);
        token
    }

    /// Whether our store may still lack ops of our arc that its other holders have: no
    /// gossip round has completed since the space started (a tab that just joined), or the
    /// fetch queue holds ops a peer announced or a round found.
    pub fn catching_up(&self) -> bool {
        self.gossip.stats().completed == 0 || !self.fetch.is_empty()
    }

    /// Up to [`GET_PEERS`] reachable peers whose arcs hold location `loc`, in rendezvous
    /// order for us ([`candidates`] keyed by our agent id): each asker prefers its own few
    /// holders, so the gets of many light clients spread over every peer holding an op
    /// rather than all going to the lowest URLs, and one asker keeps asking the same peers
    /// (their connections stay open).
    fn holders_to_ask(&self, now: Timestamp, loc: u32) -> Vec<Url> {
        let peers = reachable_arcs(&self.peers, now, &self.agent);
        let mut holders = candidates(&peers, self.agent.as_bytes(), loc, |_| false);
        holders.truncate(GET_PEERS);
        holders
    }

    /// Takes the answers to our remote gets out of a fetch response from `from`: each valid
    /// one ends the gets of its op. Returns the rest, with the answers the fetch path also
    /// wants (ops of our arc). An answer with wrong data (not the op of its id) is
    /// misbehaviour, and nothing of the frame is kept (as for any fetch response).
    pub(super) fn answer_gets(
        &mut self,
        now: Timestamp,
        from: &Url,
        ops: Vec<(OpId, Bytes)>,
    ) -> Vec<(OpId, Bytes)> {
        if self.gets.is_empty() {
            return ops;
        }
        let mut rest = Vec::with_capacity(ops.len());
        for (id, data) in ops {
            let asked = |g: &RemoteGet| g.op_id == id && g.asked.contains(from);
            if !self.gets.iter().any(asked) {
                rest.push((id, data));
                continue;
            }
            let op = match verify_op(&id, &data) {
                Ok(op) => op,
                Err(e) => {
                    self.misbehaved(now, from, format!("sent wrong data for op {id}: {e}"));
                    return Vec::new();
                }
            };
            self.end_gets(|g| g.op_id == id, Some(&op));
            if self.fetch.is_pending(&id) || self.wants(&id) {
                rest.push((id, data));
            }
        }
        rest
    }

    /// Gets past their deadline end with `None`.
    pub(super) fn expire_gets(&mut self, now: Timestamp) {
        self.end_gets(|g| g.deadline <= now, None);
    }

    /// The earliest deadline of a remote get.
    pub(super) fn gets_timeout(&self) -> Option<Timestamp> {
        self.gets.iter().map(|g| g.deadline).min()
    }

    fn end_gets(&mut self, done: impl Fn(&RemoteGet) -> bool, op: Option<&Op>) {
        let (ended, waiting): (Vec<RemoteGet>, Vec<RemoteGet>) =
            std::mem::take(&mut self.gets).into_iter().partition(done);
        self.gets = waiting;
        for g in ended {
            let op = op.cloned();
            self.emit(SpaceEvent::Got { token: g.token, op });
        }
    }
}
