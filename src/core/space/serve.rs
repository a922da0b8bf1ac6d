//! Serving peers' fetch requests (Kitsune2 `crates/core/src/factories/core_fetch.rs`: the
//! responder looks the requested ops up and sends what it holds), bounded per peer.
//!
//! Two bounds, both per requesting peer:
//! - store reads at once: [`SpaceConfig::max_serving_per_peer`]; the part of a request
//!   that needs a read beyond that is dropped (the requester times out and asks again);
//! - response bytes handed to the transport and not yet sent:
//!   [`SpaceConfig::max_unsent_response_bytes_per_peer`]. A request that arrives while they
//!   are over it waits (at most `max_serving_per_peer` requests; more are dropped) and is
//!   served as sends complete. Without this, requests for ops in [`OpCache`] (answered
//!   without a read) or for ops read quickly queued frames as fast as a peer could ask: a
//!   16 KiB request can ask for megabytes, and frames wait in memory for a slow or
//!   hostile receiver's data channel ([`crate::net`]'s sender waits on `bufferedAmount`).
//!
//! [`SpaceConfig::max_serving_per_peer`]: super::SpaceConfig::max_serving_per_peer
//! [`SpaceConfig::max_unsent_response_bytes_per_peer`]: super::SpaceConfig::max_unsent_response_bytes_per_peer
//! [`OpCache`]: crate::core::op_cache::OpCache

use std::collections::VecDeque;

use super::{Pending, SendKind, Space, StoreRequest};
use crate::api::{MetaOp, StoreError};
use crate::model::id::OpId;
use crate::model::url::Url;

/// What is being served to one peer.
#[derive(Debug, Default)]
pub(super) struct Serving {
    /// Store reads in flight for its requests.
    reads: usize,
    /// Bytes of response frames handed to the transport whose send has no result yet.
    unsent: usize,
    /// Requests that arrived while `unsent` was over the budget, oldest first.
    held: VecDeque<Vec<OpId>>,
}

impl Serving {
    fn idle(&self) -> bool {
        self.reads == 0 && self.unsent == 0 && self.held.is_empty()
    }
}

impl Space {
    /// A peer's fetch request: served now, or held while the responses already handed to
    /// the transport for that peer are over the byte budget (dropped when too many wait).
    pub(super) fn on_fetch_request(&mut self, from: &Url, mut ids: Vec<OpId>) {
        ids.truncate(self.cfg.max_request_ids);
        let held_max = self.cfg.max_serving_per_peer;
        let over = |s: &Serving| s.unsent >= self.cfg.max_unsent_response_bytes_per_peer;
        match self.serving.get_mut(from) {
            Some(s) if over(s) && s.held.len() < held_max => {
                s.held.push_back(ids);
                self.stats.requests_held += 1;
            }
            Some(s) if over(s) => self.stats.requests_dropped += 1,
            // Under the budget; an empty request makes no entry (it would stay until pruned).
            _ => self.serve_request(from, ids),
        }
    }

    /// The ops in [`OpCache`](crate::core::op_cache::OpCache) are answered at once, the rest
    /// after a store read (at most `max_serving_per_peer` reads per peer at a time).
    fn serve_request(&mut self, from: &Url, mut ids: Vec<OpId>) {
        let mut hits = Vec::new();
        ids.retain(|id| match self.op_cache.get(id) {
            Some(d) => {
                hits.push(MetaOp {
                    op_id: id.clone(),
                    op_data: d.clone(),
                });
                false
            }
            None => true,
        });
        if !hits.is_empty() {
            self.stats.ops_served_from_memory += hits.len() as u64;
            self.respond(from, hits);
        }
        if ids.is_empty() {
            return;
        }
        let s = self.serving.entry(from.clone()).or_default();
        if s.reads >= self.cfg.max_serving_per_peer {
            self.stats.requests_dropped += 1;
            return;
        }
        s.reads += 1;
        self.store(
            StoreRequest::Retrieve(ids),
            Pending::Serve { to: from.clone() },
        );
    }

    /// Ops read for a peer's fetch request.
    pub(super) fn on_retrieved(&mut self, to: Url, r: Result<Vec<MetaOp>, StoreError>) {
        if let Some(s) = self.serving.get_mut(&to) {
            s.reads = s.reads.saturating_sub(1);
        }
        match r {
            Ok(ops) => self.respond(&to, ops),
            Err(e) => self.store_failed(e),
        }
        self.forget_idle(&to);
    }

    /// Sends `ops` to `to` as fetch responses of at most
    /// [`SpaceConfig::max_response_frame_bytes`](super::SpaceConfig::max_response_frame_bytes),
    /// counted as unsent until their send results. Not recorded as held by `to`: it holds
    /// them only once it stored them.
    fn respond(&mut self, to: &Url, ops: Vec<MetaOp>) {
        self.stats.ops_served += ops.len() as u64;
        let max = self.cfg.max_response_frame_bytes;
        for f in crate::core::fetch::split_response(&self.cfg.space, ops, max) {
            let len = f.len();
            self.serving.entry(to.clone()).or_default().unsent += len;
            self.send(to.clone(), f, SendKind::Response(len));
        }
    }

    /// A response frame of `len` bytes to `to` was sent (or failed): requests held for that
    /// peer are served while its unsent bytes are under the budget.
    pub(super) fn response_sent(&mut self, to: &Url, len: usize) {
        let budget = self.cfg.max_unsent_response_bytes_per_peer;
        if let Some(s) = self.serving.get_mut(to) {
            s.unsent = s.unsent.saturating_sub(len);
        }
        while let Some(s) = self.serving.get_mut(to)
            && s.unsent < budget
            && let Some(ids) = s.held.pop_front()
        {
            self.serve_request(to, ids);
        }
        self.forget_idle(to);
    }

    /// The connection to `peer` closed: its held requests are dropped (the requester asks
    /// again for what was in flight, [`crate::core::fetch::FetchQueue::connection_lost`]).
    pub(super) fn serving_disconnected(&mut self, peer: &Url) {
        if let Some(s) = self.serving.get_mut(peer) {
            self.stats.requests_dropped += s.held.len() as u64;
            s.held.clear();
        }
        self.forget_idle(peer);
    }

    fn forget_idle(&mut self, peer: &Url) {
        if self.serving.get(peer).is_some_and(Serving::idle) {
            self.serving.remove(peer);
        }
    }
}
