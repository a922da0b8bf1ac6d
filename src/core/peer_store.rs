//! The peer store of one space: the verified, unexpired agent infos we know, and what we have
//! learned about the peers behind them (blocked, unresponsive).
//!
//! Rules, with their Kitsune2 source (`crates/core/src/factories/mem_peer_store.rs` unless
//! noted):
//! - only [`AgentInfoSigned`] goes in, and that type can only be built by verifying the
//!   signature, so everything held is verified; infos for another space are refused (fennec);
//! - expired infos are refused and pruned; time is an input (`now`), never read here;
//! - per agent, an info replaces the held one only if its `created_at` is strictly newer;
//! - a tombstone (the agent left) is held like any info, so an older live info cannot bring
//!   the agent back; once the tombstone itself expires, its `created_at` is remembered for
//!   [`PeerStoreConfig::tombstone_retention`] more (fennec: Kitsune2 forgets it, so an older
//!   live info with a longer `expires_at` could resurrect the agent);
//! - infos whose `created_at` lies more than [`PeerStoreConfig::max_future_skew`] ahead of
//!   `now` are refused (fennec: such an info would shadow every honest update until then);
//! - blocked agents are never inserted (Kitsune2 `Blocks`);
//! - [`PeerStore::by_overlapping_arc`] excludes tombstones; [`PeerStore::near_location`]
//!   excludes tombstones and empty arcs, sorted by [`DhtArc::dist`];
//! - a peer URL can be marked unresponsive until a time (Kitsune2 §5.3 `set_unresponsive`,
//!   which uses the info's `expires_at`; here the caller picks the time, and any message from
//!   the URL clears the mark);
//! - the store holds at most [`PeerStoreConfig::max_agents`] infos (fennec).

use std::time::Duration;

use crate::bounded::BoundedSet;
use crate::core::config::{ConfigError, at_least_one};
use crate::hash::{HashMap, HashSet};
use crate::model::agent::AgentInfoSigned;
use crate::model::arc::DhtArc;
use crate::model::id::{AgentId, SpaceId};
use crate::model::time::{Timestamp, micros};
use crate::model::url::Url;
use crate::sort;

/// Limits and lifetimes of a [`PeerStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStoreConfig {
    /// Most agent infos held, tombstones included. When full, expired infos are pruned
    /// first; then an insert of a new agent evicts the held info that expires first, if that
    /// is earlier than the newcomer's expiry, and is refused otherwise. Default 10 000.
    pub max_agents: usize,
    /// How long past its expiry a tombstone's `created_at` is remembered, so that older live
    /// infos stay refused. Default 24 h.
    pub tombstone_retention: Duration,
    /// Infos created more than this far in the future of `now` are refused. Default 10 min.
    pub max_future_skew: Duration,
    /// Most tombstone memories ("graves") kept after their tombstones expired; past this the
    /// one to be forgotten soonest goes first. Default 10 000.
    pub max_graves: usize,
    /// Most blocked agents remembered; past this the oldest block is lifted (FIFO). A
    /// blocked agent that signs a new info can only get in again with a new key, so the
    /// bound costs little. Default 10 000.
    pub max_blocked: usize,
}

impl PeerStoreConfig {
    /// Checks every field (paths as inside [`crate::core::space::SpaceConfig`]).
    ///
    /// # Errors
    /// `peer_store.max_agents` below 1.
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("peer_store.max_agents", self.max_agents as u64)
    }
}

/// Sizes of a [`PeerStore`]'s maps (see [`PeerStore::sizes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStoreSizes {
    /// Agent infos held, tombstones included.
    pub agents: usize,
    /// Tombstone memories.
    pub graves: usize,
    /// Blocked agents.
    pub blocked: usize,
    /// URLs marked unresponsive.
    pub unresponsive: usize,
}

impl Default for PeerStoreConfig {
    fn default() -> Self {
        PeerStoreConfig {
            max_agents: 10_000,
            tombstone_retention: Duration::from_secs(24 * 60 * 60),
            max_future_skew: Duration::from_secs(10 * 60),
            max_graves: 10_000,
            max_blocked: 10_000,
        }
    }
}

/// What [`PeerStore::insert`] did with an info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    /// A live info for an agent we did not hold live before (new, or back after expiry).
    Joined,
    /// A newer live info replaced a live one (URL or arc may have changed).
    Updated,
    /// A tombstone replaced a live info: the agent left.
    Left,
    /// A tombstone for an agent we did not hold live; kept to stop older infos.
    Tombstone,
    /// Not stored, for the given reason.
    Ignored(Ignored),
}

/// Why [`PeerStore::insert`] did not store an info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// The info is for another space.
    WrongSpace,
    /// `expires_at <= now`.
    Expired,
    /// `created_at` is too far in the future.
    FromTheFuture,
    /// We hold an info for the agent (or a tombstone) at least as new.
    NotNewer,
    /// The agent is blocked.
    Blocked,
    /// The store is full of infos that expire later.
    Full,
}

#[derive(Debug, Clone)]
struct Grave {
    created_at: Timestamp,
    forget_at: Timestamp,
}

/// Verified agent infos of one space (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct PeerStore {
    cfg: PeerStoreConfig,
    space: SpaceId,
    agents: HashMap<AgentId, AgentInfoSigned>,
    graves: HashMap<AgentId, Grave>,
    blocked: BoundedSet<AgentId>,
    unresponsive: HashMap<Url, Timestamp>,
}

impl PeerStore {
    /// An empty store for `space`.
    pub fn new(space: SpaceId, cfg: PeerStoreConfig) -> Self {
        PeerStore {
            space,
            agents: HashMap::default(),
            graves: HashMap::default(),
            blocked: BoundedSet::new(cfg.max_blocked),
            unresponsive: HashMap::default(),
            cfg,
        }
    }

    /// Sizes of the store's maps, for tests that check state stays bounded.
    pub fn sizes(&self) -> PeerStoreSizes {
        PeerStoreSizes {
            agents: self.agents.len(),
            graves: self.graves.len(),
            blocked: self.blocked.len(),
            unresponsive: self.unresponsive.len(),
        }
    }

    /// URLs of unexpired live infos: the peers whose per-URL state is worth keeping.
    pub fn live_urls(&self, now: Timestamp) -> HashSet<Url> {
        self.agents
            .values()
            .filter(|a| !a.is_tombstone && !a.is_expired(now))
            .filter_map(|a| a.url.clone())
            .collect()
    }

    /// The space this store is for.
    pub fn space(&self) -> &SpaceId {
        &self.space
    }

    /// Inserts a verified info, applying the rules in the [module docs](self).
    pub fn insert(&mut self, now: Timestamp, info: AgentInfoSigned) -> Insert {
        if info.space != self.space {
            return Insert::Ignored(Ignored::WrongSpace);
        }
        if self.blocked.contains(&info.agent) {
            return Insert::Ignored(Ignored::Blocked);
        }
        if info.is_expired(now) {
            return Insert::Ignored(Ignored::Expired);
        }
        if info.created_at > now.plus(self.cfg.max_future_skew) {
            return Insert::Ignored(Ignored::FromTheFuture);
        }
        let held = self.agents.get(&info.agent);
        if let Some(h) = held
            && h.created_at >= info.created_at
        {
            return Insert::Ignored(Ignored::NotNewer);
        }
        if let Some(g) = self.graves.get(&info.agent)
            && g.created_at >= info.created_at
        {
            return Insert::Ignored(Ignored::NotNewer);
        }
        let was_live = held.is_some_and(|h| !h.is_tombstone && !h.is_expired(now));
        if held.is_none() && self.agents.len() >= self.cfg.max_agents {
            self.prune(now);
            if self.agents.len() >= self.cfg.max_agents && !self.evict_for(&info) {
                return Insert::Ignored(Ignored::Full);
            }
        }
        let tomb = info.is_tombstone;
        if let Some(url) = &info.url {
            // A freshly signed info says the peer is back.
            self.unresponsive.remove(url);
        }
        self.agents.insert(info.agent.clone(), info);
        match (tomb, was_live) {
            (false, false) => Insert::Joined,
            (false, true) => Insert::Updated,
            (true, true) => Insert::Left,
            (true, false) => Insert::Tombstone,
        }
    }

    /// Evicts the info expiring first if it expires before `info`; whether room was made.
    fn evict_for(&mut self, info: &AgentInfoSigned) -> bool {
        let victim = self
            .agents
            .values()
            .min_by_key(|a| (a.expires_at, a.agent.clone()))
            .map(|a| (a.agent.clone(), a.expires_at));
        match victim {
            Some((agent, exp)) if exp < info.expires_at => {
                self.agents.remove(&agent);
                true
            }
            _ => false,
        }
    }

    /// Removes expired infos and forgets old tombstones. Returns the removed infos that were
    /// live (not tombstones), so the caller can report them as gone.
    pub fn prune(&mut self, now: Timestamp) -> Vec<AgentInfoSigned> {
        let mut gone = Vec::new();
        let retention = micros(self.cfg.tombstone_retention);
        let graves = &mut self.graves;
        self.agents.retain(|_, a| {
            if !a.is_expired(now) {
                return true;
            }
            if a.is_tombstone {
                graves.insert(
                    a.agent.clone(),
                    Grave {
                        created_at: a.created_at,
                        forget_at: a.expires_at.add_micros(retention),
                    },
                );
            } else {
                gone.push(a.clone());
            }
            false
        });
        self.graves.retain(|_, g| g.forget_at > now);
        self.bound_graves();
        self.unresponsive.retain(|_, until| *until > now);
        sort::sort_by(&mut gone, |a, b| a.agent.cmp(&b.agent)); // one info per agent
        gone
    }

    /// Forgets the graves to be forgotten soonest while there are more than
    /// [`PeerStoreConfig::max_graves`].
    fn bound_graves(&mut self) {
        let excess = self.graves.len().saturating_sub(self.cfg.max_graves);
        if excess == 0 {
            return;
        }
        let mut by_age: Vec<(Timestamp, AgentId)> = self
            .graves
            .iter()
            .map(|(a, g)| (g.forget_at, a.clone()))
            .collect();
        sort::sort(&mut by_age); // one grave per agent
        for (_, a) in by_age.into_iter().take(excess) {
            self.graves.remove(&a);
        }
    }

    /// Removes an agent's info (not its tombstone memory).
    pub fn remove(&mut self, agent: &AgentId) -> Option<AgentInfoSigned> {
        self.agents.remove(agent)
    }

    /// The info held for `agent`, tombstone or live, if unexpired at `now`.
    pub fn get(&self, now: Timestamp, agent: &AgentId) -> Option<&AgentInfoSigned> {
        self.agents.get(agent).filter(|a| !a.is_expired(now))
    }

    /// Number of infos held (tombstones and not-yet-pruned expired infos included).
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Every unexpired info, tombstones included, sorted by agent id.
    pub fn all(&self, now: Timestamp) -> Vec<&AgentInfoSigned> {
        let mut v: Vec<_> = self
            .agents
            .values()
            .filter(|a| !a.is_expired(now))
            .collect();
        sort_by_agent(&mut v);
        v
    }

    /// Unexpired live infos (no tombstones), sorted by agent id.
    pub fn live(&self, now: Timestamp) -> Vec<&AgentInfoSigned> {
        let mut v: Vec<_> = self
            .agents
            .values()
            .filter(|a| !a.is_tombstone && !a.is_expired(now))
            .collect();
        sort_by_agent(&mut v);
        v
    }

    /// Unexpired live infos whose storage arc overlaps `arc` (Kitsune2
    /// `get_by_overlapping_storage_arc`), sorted by agent id.
    pub fn by_overlapping_arc(&self, now: Timestamp, arc: DhtArc) -> Vec<&AgentInfoSigned> {
        self.live(now)
            .into_iter()
            .filter(|a| a.storage_arc.overlaps(&arc))
            .collect()
    }

    /// Up to `limit` unexpired live infos with a non-empty arc, nearest to `loc` first by
    /// [`DhtArc::dist`] (0 for arcs holding `loc`), ties by agent id (Kitsune2
    /// `get_near_location`).
    pub fn near_location(&self, now: Timestamp, loc: u32, limit: usize) -> Vec<&AgentInfoSigned> {
        let mut v: Vec<_> = self
            .live(now)
            .into_iter()
            .filter(|a| !a.storage_arc.is_empty())
            .map(|a| (a.storage_arc.dist(loc), a))
            .collect();
        // Unstable: one info per agent, so no two entries tie.
        sort::sort_by(&mut v, |(da, a), (db, b)| {
            da.cmp(db).then_with(|| a.agent.cmp(&b.agent))
        });
        v.into_iter().take(limit).map(|(_, a)| a).collect()
    }

    /// Unexpired infos (tombstones have no URL) that carry `url`, sorted by agent id.
    pub fn by_url(&self, now: Timestamp, url: &Url) -> Vec<&AgentInfoSigned> {
        self.live(now)
            .into_iter()
            .filter(|a| a.url.as_ref() == Some(url))
            .collect()
    }

    /// The agents of [`Self::by_url`]: whom a message from `url` speaks for.
    pub fn agents_at(&self, now: Timestamp, url: &Url) -> Vec<AgentId> {
        self.by_url(now, url)
            .into_iter()
            .map(|a| a.agent.clone())
            .collect()
    }

    /// THE admission rule of fennec, the only one (Kitsune2 `crates/api/src/transport.rs`,
    /// reference §3.3, where no access decision means blocked): whether module traffic from
    /// `url` is accepted at `now`, i.e. we hold a verified agent info for this space that
    /// [speaks for a live agent at `url`](crate::model::agent::AgentInfo::is_live_at) (unexpired, not a
    /// tombstone) and whose agent is not blocked. The transport applies no rule of its own:
    /// it hands every decoded NOTIFY/MODULE message of an open connection to the space
    /// (`crate::api::transport::TransportEvent::Message`), which asks this; so a block
    /// takes effect at once, on connections already open too.
    pub fn admits(&self, now: Timestamp, url: &Url) -> bool {
        self.agents
            .values()
            .any(|a| a.is_live_at(url, now) && !self.blocked.contains(&a.agent))
    }

    /// Blocks `agent`: its info is removed and future ones are refused.
    pub fn block(&mut self, agent: AgentId) {
        self.agents.remove(&agent);
        self.blocked.insert(agent);
    }

    /// Lifts a block.
    pub fn unblock(&mut self, agent: &AgentId) {
        self.blocked.remove(agent);
    }

    /// Whether `agent` is blocked.
    pub fn is_blocked(&self, agent: &AgentId) -> bool {
        self.blocked.contains(agent)
    }

    /// Marks `url` unresponsive until `until` (µs). Publish, fetch and catch-up skip it.
    pub fn set_unresponsive(&mut self, url: Url, until: Timestamp) {
        let e = self.unresponsive.entry(url).or_insert(until);
        *e = (*e).max(until);
    }

    /// Clears an unresponsive mark (the peer was heard from). Returns whether one was set.
    pub fn clear_unresponsive(&mut self, url: &Url) -> bool {
        self.unresponsive.remove(url).is_some()
    }

    /// Whether `url` is marked unresponsive at `now`.
    pub fn is_unresponsive(&self, now: Timestamp, url: &Url) -> bool {
        self.unresponsive.get(url).is_some_and(|t| *t > now)
    }

    /// Live infos with a URL that is not unresponsive, excluding `local`, one per URL (the
    /// newest info), sorted by URL: the peers we may talk to.
    pub fn reachable(&self, now: Timestamp, local: &AgentId) -> Vec<&AgentInfoSigned> {
        let mut by_url: HashMap<&Url, &AgentInfoSigned> = HashMap::default();
        for a in self.live(now) {
            if &a.agent == local {
                continue;
            }
            let Some(url) = &a.url else { continue };
            if self.is_unresponsive(now, url) {
                continue;
            }
            let e = by_url.entry(url).or_insert(a);
            if a.created_at > e.created_at {
                *e = a;
            }
        }
        let mut v: Vec<_> = by_url.into_values().collect();
        sort::sort_by(&mut v, |a, b| a.url.cmp(&b.url)); // distinct map keys
        v
    }
}

/// Sorts infos by agent id (unstable: the store holds one info per agent).
fn sort_by_agent(v: &mut [&AgentInfoSigned]) {
    sort::sort_by(v, |a, b| a.agent.cmp(&b.agent));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::agent::{AgentInfo, AgentKey};

    const T0: i64 = 1_700_000_000_000_000;
    const MIN: i64 = 60 * 1_000_000;

    fn space() -> SpaceId {
        SpaceId::from_bytes(vec![1u8; 32])
    }
    fn key(n: u8) -> AgentKey {
        AgentKey::from_secret_bytes(&[n; 32])
    }
    fn url(n: u8) -> Url {
        Url::parse(&format!("ws://peer.test:80/p{n}")).unwrap()
    }
    fn info(n: u8, created: i64, arc: DhtArc) -> AgentInfoSigned {
        let k = key(n);
        let i = AgentInfo::new(k.agent_id(), space(), Timestamp(created), Some(url(n)), arc);
        AgentInfoSigned::sign(&k, i).unwrap()
    }
    fn tomb(n: u8, created: i64) -> AgentInfoSigned {
        let k = key(n);
        AgentInfoSigned::sign(
            &k,
            AgentInfo::tombstone(k.agent_id(), space(), Timestamp(created)),
        )
        .unwrap()
    }
    fn store() -> PeerStore {
        PeerStore::new(space(), PeerStoreConfig::default())
    }

    #[test]
    fn newer_created_at_wins_and_equal_or_older_is_ignored() {
        let mut s = store();
        let now = Timestamp(T0 + MIN);
        assert_eq!(s.insert(now, info(1, T0, DhtArc::FULL)), Insert::Joined);
        assert_eq!(
            s.insert(now, info(1, T0, DhtArc::FULL)),
            Insert::Ignored(Ignored::NotNewer)
        );
        assert_eq!(
            s.insert(now, info(1, T0 - 1, DhtArc::FULL)),
            Insert::Ignored(Ignored::NotNewer)
        );
        assert_eq!(
            s.insert(now, info(1, T0 + 5, DhtArc::Empty)),
            Insert::Updated
        );
        assert_eq!(
            s.get(now, &key(1).agent_id()).unwrap().storage_arc,
            DhtArc::Empty
        );
    }

    #[test]
    fn tombstones_stick_even_after_they_expire() {
        let mut s = store();
        let now = Timestamp(T0 + MIN);
        s.insert(now, info(1, T0, DhtArc::FULL));
        assert_eq!(s.insert(now, tomb(1, T0 + 10)), Insert::Left);
        assert!(s.live(now).is_empty());
        assert!(!s.admits(now, &url(1)));
        // An older live info (e.g. replayed from bootstrap) cannot resurrect the agent.
        assert_eq!(
            s.insert(now, info(1, T0 + 5, DhtArc::FULL)),
            Insert::Ignored(Ignored::NotNewer)
        );
        // After the tombstone expired and was pruned, its memory still refuses older infos.
        let later = Timestamp(T0 + 10 + 21 * MIN);
        s.prune(later);
        assert_eq!(s.len(), 0);
        let mut old = AgentInfo::new(
            key(1).agent_id(),
            space(),
            Timestamp(T0 + 5),
            Some(url(1)),
            DhtArc::FULL,
        );
        old.expires_at = Timestamp(T0 + 60 * MIN);
        let old = AgentInfoSigned::sign(&key(1), old).unwrap();
        assert_eq!(s.insert(later, old), Insert::Ignored(Ignored::NotNewer));
        // A genuinely newer info (the agent rejoined) is accepted.
        assert_eq!(
            s.insert(later, info(1, T0 + 20 * MIN, DhtArc::FULL)),
            Insert::Joined
        );
    }

    #[test]
    fn expired_and_future_and_wrong_space_are_refused_and_expired_pruned() {
        let mut s = store();
        let now = Timestamp(T0 + 30 * MIN);
        assert_eq!(
            s.insert(now, info(1, T0, DhtArc::FULL)),
            Insert::Ignored(Ignored::Expired)
        );
        assert_eq!(
            s.insert(now, info(1, T0 + 50 * MIN, DhtArc::FULL)),
            Insert::Ignored(Ignored::FromTheFuture)
        );
        let k = key(2);
        let other = AgentInfoSigned::sign(
            &k,
            AgentInfo::new(
                k.agent_id(),
                SpaceId::from_bytes(vec![9u8; 32]),
                now,
                None,
                DhtArc::FULL,
            ),
        )
        .unwrap();
        assert_eq!(s.insert(now, other), Insert::Ignored(Ignored::WrongSpace));
        assert_eq!(s.insert(now, info(3, now.0, DhtArc::FULL)), Insert::Joined);
        let gone = s.prune(Timestamp(now.0 + 20 * MIN));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].agent, key(3).agent_id());
        assert!(s.is_empty());
    }

    #[test]
    fn queries_by_arc_location_and_url() {
        let mut s = store();
        let now = Timestamp(T0);
        s.insert(now, info(1, T0, DhtArc::Arc(0, 99)));
        s.insert(now, info(2, T0, DhtArc::Arc(200, 299)));
        s.insert(now, info(3, T0, DhtArc::Empty));
        s.insert(now, info(4, T0, DhtArc::FULL));
        s.insert(now, info(5, T0 - 1, DhtArc::FULL));
        s.insert(now, tomb(5, T0));
        let ids = |v: Vec<&AgentInfoSigned>| v.iter().map(|a| a.agent.clone()).collect::<Vec<_>>();
        let mut want = vec![key(2).agent_id(), key(4).agent_id()];
        want.sort();
        assert_eq!(ids(s.by_overlapping_arc(now, DhtArc::Arc(250, 260))), want);
        let near = ids(s.near_location(now, 150, 10));
        assert_eq!(near.len(), 3, "no tombstone, no empty arc");
        assert_eq!(near[0], key(4).agent_id(), "holds 150: distance 0");
        assert_eq!(near[1], key(2).agent_id(), "50 away");
        assert_eq!(near[2], key(1).agent_id(), "51 away");
        assert_eq!(s.near_location(now, 150, 1).len(), 1);
        assert_eq!(ids(s.by_url(now, &url(2))), vec![key(2).agent_id()]);
        assert!(s.by_url(now, &url(5)).is_empty());
        assert!(s.admits(now, &url(1)) && !s.admits(now, &url(9)));
    }

    #[test]
    fn blocked_and_unresponsive() {
        let mut s = store();
        let now = Timestamp(T0);
        s.insert(now, info(1, T0, DhtArc::FULL));
        s.insert(now, info(2, T0, DhtArc::FULL));
        s.block(key(1).agent_id());
        assert!(!s.admits(now, &url(1)));
        assert_eq!(
            s.insert(now, info(1, T0 + 1, DhtArc::FULL)),
            Insert::Ignored(Ignored::Blocked)
        );
        s.set_unresponsive(url(2), Timestamp(T0 + MIN));
        assert!(s.is_unresponsive(now, &url(2)));
        assert!(s.reachable(now, &key(9).agent_id()).is_empty());
        assert!(
            !s.is_unresponsive(Timestamp(T0 + MIN), &url(2)),
            "mark expires"
        );
        assert!(s.clear_unresponsive(&url(2)));
        assert_eq!(s.reachable(now, &key(9).agent_id()).len(), 1);
        assert!(
            s.reachable(now, &key(2).agent_id()).is_empty(),
            "local agent excluded"
        );
        // A newer info from the peer clears the mark.
        s.set_unresponsive(url(2), Timestamp(T0 + MIN));
        s.insert(now, info(2, T0 + 1, DhtArc::FULL));
        assert!(!s.is_unresponsive(now, &url(2)));
    }

    #[test]
    fn size_bound_evicts_the_soonest_expiring_or_refuses() {
        let mut s = PeerStore::new(
            space(),
            PeerStoreConfig {
                max_agents: 2,
                ..Default::default()
            },
        );
        let now = Timestamp(T0 + 2);
        s.insert(now, info(1, T0, DhtArc::FULL));
        s.insert(now, info(2, T0 + 1, DhtArc::FULL));
        assert_eq!(s.insert(now, info(3, T0 + 2, DhtArc::FULL)), Insert::Joined);
        assert_eq!(s.len(), 2);
        assert!(
            s.get(now, &key(1).agent_id()).is_none(),
            "soonest expiry evicted"
        );
        assert_eq!(
            s.insert(now, info(4, T0, DhtArc::FULL)),
            Insert::Ignored(Ignored::Full)
        );
        // Updates of held agents always fit.
        assert_eq!(
            s.insert(now, info(2, T0 + 3, DhtArc::FULL)),
            Insert::Updated
        );
    }
}
