//! [`Gossip`]'s housekeeping for its driver: the arc changing, per-peer state pruned.

use super::*;

impl Gossip {
    /// Our storage arc changed: rounds from now on offer and compare `sectors`.
    pub fn set_sectors(&mut self, sectors: SectorSet) {
        self.sectors = sectors;
    }

    /// Keeps the per-peer state (open rounds, burst records, bookmarks, last round) only of
    /// the peers for which `keep` is true. The driver calls it with the peers whose agent
    /// info is live, so this state is bounded by the peer store.
    pub fn retain_peers(&mut self, keep: impl Fn(&Url) -> bool) {
        self.sessions.retain(|u, _| keep(u));
        self.bursts.retain(|u, _| keep(u));
        self.bookmarks.retain(|u, _| keep(u));
        self.last_gossip.retain(|u, _| keep(u));
    }

    /// Ends the open round with `peer`, if any, without a message (membership declared it
    /// down: it cannot answer). Left open, an `Initiate` lost on the way would win the
    /// tie-break against the peer's fresh `Initiate` once it is back, and both sides would
    /// wait for an answer until the round timed out. Returns whether a round was open.
    pub fn end_round_with(&mut self, peer: &Url) -> bool {
        self.sessions.remove(peer).is_some()
    }

    /// While `on`, every new Initiate is answered `Busy` (Kitsune2's answer to an acceptor
    /// at its limit): ops are on their way to the driver (its fetch queue is full of what
    /// earlier rounds found, or a bulk intake is flowing in), and a new round would find
    /// (and move) those ids again. Open rounds go on.
    pub fn set_saturated(&mut self, on: bool) {
        self.saturated = on;
    }

    /// Entries of the per-peer maps [`Gossip::retain_peers`] prunes, summed.
    pub fn peer_entries(&self) -> usize {
        self.sessions.len() + self.bursts.len() + self.bookmarks.len() + self.last_gossip.len()
    }

    /// Resets the interval to fast: the driver knows divergence is likely (our signal
    /// connection came back after an outage).
    pub fn hurry(&mut self) {
        self.scheduler.on_round(true);
    }
}
