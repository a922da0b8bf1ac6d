//! What the app is told about peers: the live set behind `space.peers()` and the rule "one
//! report per change" for `peer` events. Three sources report the same peers, each on its own
//! schedule: the space's agent infos ([`SpaceEvent::PeerJoined`], [`SpaceEvent::PeerLeft`]),
//! membership ([`SpaceEvent::MemberAlive`] and its suspect/down/left), and the transport (a
//! connection closed because the peer's page closed, or a departed agent connected again).
//! [`PeerView::track`], [`PeerView::depart_at`] and [`PeerView::reconnected`] fold them into
//! one live set and say which reports change it; only those reach the app.
//!
//! Rules (README "Liveness"):
//! - one departure gives one `left` or `down` (a leaving tab's tombstone, its membership leave
//!   and a later down are the same departure);
//! - `suspect` only for a listed peer;
//! - `alive` only when it changes what the app was told: a suspect refuted, or a peer that
//!   was down, left or unknown listed again. Membership reports `alive` for every new member
//!   and for every newer identity of a member it had as down or left (SWIM's rejoin), also
//!   when the peer was already reported `joined` by the space or the transport (a reloaded
//!   tab): those are not changes for the app.

use crate::core::space::SpaceEvent;
use crate::hash::HashMap;
use crate::model::arc::DhtArc;
use crate::model::id::AgentId;
use crate::model::url::Url;

/// A listed peer's liveness as `space.peers()` shows it (membership's view, [`crate::core::membership`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Joined, or alive by membership.
    Alive,
    /// A probe failed; down after the suspicion timeout unless it refutes.
    Suspect,
}

/// The live peers (URL if known, liveness) and the departed ones; see the [module docs](self).
/// Hash maps: a B-tree map type costs ~10 KB of wasm, a hash map type ~2 KB (docs/design.md, "Size").
#[derive(Debug, Default)]
pub struct PeerView {
    live: HashMap<AgentId, (Option<Url>, Liveness)>,
    /// Departed agents, and whether they left (`true`) or membership declared them down.
    departed: HashMap<AgentId, bool>,
    /// Each agent's storage arc from its latest agent info ([`SpaceEvent::PeerArc`]); kept
    /// for departed agents too, which may come back with no newer info (a reload).
    arcs: HashMap<AgentId, DhtArc>,
}

impl PeerView {
    /// Applies `e`; `false` when `e` changes nothing the app was told and must not be passed
    /// on (a second `left`/`down` for a departed agent, a `suspect` for one not listed, an
    /// `alive` for one listed as alive; every [`SpaceEvent::PeerArc`], which only updates
    /// the arcs [`Self::arc`] gives). Events that are not about peers give `true`.
    pub fn track(&mut self, e: &SpaceEvent) -> bool {
        match e {
            // Not again for an agent already live at that URL (reported back by
            // [`Self::reconnected`] before the space saw its newer info).
            SpaceEvent::PeerJoined { agent, url } => {
                self.departed.remove(agent);
                let before = self
                    .live
                    .insert(agent.clone(), (url.clone(), Liveness::Alive));
                before.is_none_or(|(u, _)| &u != url)
            }
            SpaceEvent::MemberAlive { agent, url } => self.alive(agent, url),
            SpaceEvent::PeerArc { agent, arc } => {
                self.arcs.insert(agent.clone(), *arc);
                false
            }
            SpaceEvent::MemberSuspect { agent, .. } => match self.live.get_mut(agent) {
                Some(entry) => {
                    entry.1 = Liveness::Suspect;
                    true
                }
                None => false,
            },
            SpaceEvent::PeerLeft { agent }
            | SpaceEvent::MemberLeft { agent, .. }
            | SpaceEvent::MemberDown { agent, .. } => {
                let left = !matches!(e, SpaceEvent::MemberDown { .. });
                let was_live = self.live.remove(agent).is_some();
                let mut first = false;
                self.departed
                    .entry(agent.clone())
                    .and_modify(|l| *l |= left)
                    .or_insert_with(|| {
                        first = true;
                        left
                    });
                was_live || first
            }
            _ => true,
        }
    }

    /// Membership says `agent` is alive: listed as alive (its URL updated when given);
    /// `true` unless it was listed as alive already.
    fn alive(&mut self, agent: &AgentId, url: &Option<Url>) -> bool {
        self.departed.remove(agent);
        let mut changed = true;
        let entry = self
            .live
            .entry(agent.clone())
            .and_modify(|e| changed = e.1 != Liveness::Alive)
            .or_insert((None, Liveness::Alive));
        if url.is_some() {
            entry.0 = url.clone();
        }
        entry.1 = Liveness::Alive;
        changed
    }

    /// The live agents at `url`, now departed (their page closed); each to be reported `left`.
    pub fn depart_at(&mut self, url: &Url) -> Vec<AgentId> {
        let gone: Vec<AgentId> = self
            .live
            .iter()
            .filter(|(_, (u, _))| u.as_ref() == Some(url))
            .map(|(a, _)| a.clone())
            .collect();
        for a in &gone {
            self.live.remove(a);
            self.departed.insert(a.clone(), true);
        }
        gone
    }

    /// A departed `agent` connected again from `url` (a reloaded page): live again; `true`
    /// when it is to be reported `joined`. One membership declared down (not left) stays
    /// down: it comes back with membership's `alive` (a healed partition), not as `joined`.
    pub fn reconnected(&mut self, agent: &AgentId, url: &Url) -> bool {
        if self.departed.get(agent) != Some(&true) || self.live.contains_key(agent) {
            return false;
        }
        self.departed.remove(agent);
        self.live
            .insert(agent.clone(), (Some(url.clone()), Liveness::Alive));
        true
    }

    /// The live peers: agent, URL if known, liveness; in no particular order (callers sort).
    pub fn iter(&self) -> impl Iterator<Item = (&AgentId, &Option<Url>, Liveness)> {
        self.live.iter().map(|(a, (u, l))| (a, u, *l))
    }

    /// How many peers are live.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// No live peer.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// `agent`'s storage arc, if an agent info of it was seen.
    pub fn arc(&self, agent: &AgentId) -> Option<DhtArc> {
        self.arcs.get(agent).copied()
    }

    /// `agent`'s liveness if it is listed.
    pub fn liveness(&self, agent: &AgentId) -> Option<Liveness> {
        self.live.get(agent).map(|e| e.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(n: u8) -> AgentId {
        AgentId::from_bytes(vec![n; 32])
    }

    fn url(n: u8) -> Url {
        Url::parse(&format!("ws://peer.test:80/p{n}")).expect("test url")
    }

    fn joined(n: u8) -> SpaceEvent {
        SpaceEvent::PeerJoined {
            agent: agent(n),
            url: Some(url(n)),
        }
    }

    fn alive(n: u8) -> SpaceEvent {
        SpaceEvent::MemberAlive {
            agent: agent(n),
            url: None,
        }
    }

    fn down(n: u8) -> SpaceEvent {
        SpaceEvent::MemberDown {
            agent: agent(n),
            url: None,
        }
    }

    fn suspect(n: u8) -> SpaceEvent {
        SpaceEvent::MemberSuspect {
            agent: agent(n),
            url: None,
        }
    }

    #[test]
    fn one_departure_gives_one_event_and_no_down_after_left() {
        let mut p = PeerView::default();
        assert!(p.track(&joined(1)));
        assert!(p.track(&SpaceEvent::MemberLeft {
            agent: agent(1),
            url: None
        }));
        assert!(!p.track(&SpaceEvent::PeerLeft { agent: agent(1) }));
        assert!(!p.track(&down(1)));
        assert!(!p.track(&suspect(1)));
        assert!(p.is_empty());
    }

    #[test]
    fn suspect_is_listed_down_is_not_alive_brings_back() {
        let mut p = PeerView::default();
        assert!(p.track(&joined(2)));
        assert!(p.track(&suspect(2)));
        assert_eq!(p.liveness(&agent(2)), Some(Liveness::Suspect));
        assert!(p.track(&down(2)));
        assert_eq!(p.liveness(&agent(2)), None);
        assert!(p.track(&alive(2)));
        assert_eq!(p.liveness(&agent(2)), Some(Liveness::Alive));
        // A new departure after coming back is reported again.
        assert!(p.track(&SpaceEvent::PeerLeft { agent: agent(2) }));
    }

    #[test]
    fn a_refuted_suspicion_is_reported_alive() {
        let mut p = PeerView::default();
        assert!(p.track(&joined(3)));
        assert!(p.track(&suspect(3)));
        assert!(p.track(&alive(3)));
        assert_eq!(p.liveness(&agent(3)), Some(Liveness::Alive));
    }

    /// `PeerArc` is never told; the arc is the latest info's, `None` before one came, and it
    /// outlives a departure (a reloaded tab is listed again before its newer info comes).
    #[test]
    fn a_peers_arc_is_its_latest_infos_and_outlives_a_reload() {
        let mut p = PeerView::default();
        let arc = |a| SpaceEvent::PeerArc {
            agent: agent(6),
            arc: a,
        };
        assert!(p.track(&alive(6)));
        assert_eq!(p.arc(&agent(6)), None, "known by membership only");
        assert!(!p.track(&arc(DhtArc::FULL)));
        assert!(!p.track(&arc(DhtArc::Arc(0, 99))));
        assert_eq!(p.arc(&agent(6)), Some(DhtArc::Arc(0, 99)));
        p.track(&joined(6));
        assert_eq!(p.depart_at(&url(6)), [agent(6)]);
        assert!(p.reconnected(&agent(6), &url(7)));
        assert_eq!(p.arc(&agent(6)), Some(DhtArc::Arc(0, 99)));
    }

    /// Passes `e` through `p` like the glue does; the kinds the app was told.
    fn tell(p: &mut PeerView, told: &mut Vec<&'static str>, e: SpaceEvent, kind: &'static str) {
        if p.track(&e) {
            told.push(kind);
        }
    }

    /// The departure e2e flake (`['joined', 'alive']` where `['left', 'joined']` was
    /// expected): a tab closed, membership declared its old identity down, the page reloaded
    /// and connected again (`joined`), then membership saw its newer identity (down → alive).
    /// That `alive` changes nothing: the app already has the peer as joined.
    #[test]
    fn a_reloaded_tab_is_joined_once_without_a_stray_alive() {
        let (mut p, mut told) = (PeerView::default(), Vec::new());
        tell(&mut p, &mut told, joined(4), "joined");
        tell(&mut p, &mut told, alive(4), "alive");
        // The transport: its connection closed with "page closed".
        told.extend(p.depart_at(&url(4)).iter().map(|_| "left"));
        // Membership declares its old identity down; the tombstone arrives.
        tell(&mut p, &mut told, suspect(4), "suspect");
        tell(&mut p, &mut told, down(4), "down");
        tell(
            &mut p,
            &mut told,
            SpaceEvent::PeerLeft { agent: agent(4) },
            "left",
        );
        // The reloaded page connects from a new URL, then membership sees its newer identity
        // (down → alive) and the space its newer agent info.
        if p.reconnected(&agent(4), &url(5)) {
            told.push("joined");
        }
        tell(&mut p, &mut told, alive(4), "alive");
        let info = SpaceEvent::PeerJoined {
            agent: agent(4),
            url: Some(url(5)),
        };
        tell(&mut p, &mut told, info, "joined");
        assert_eq!(told, ["joined", "left", "joined"]);
        assert_eq!(p.liveness(&agent(4)), Some(Liveness::Alive));
    }

    /// A partition heals: the peer declared down connects again (no `joined`: it never left)
    /// and membership's `alive` brings it back.
    #[test]
    fn a_peer_back_from_down_is_reported_alive_not_joined() {
        let (mut p, mut told) = (PeerView::default(), Vec::new());
        tell(&mut p, &mut told, joined(4), "joined");
        tell(&mut p, &mut told, suspect(4), "suspect");
        tell(&mut p, &mut told, down(4), "down");
        if p.reconnected(&agent(4), &url(4)) {
            told.push("joined");
        }
        tell(&mut p, &mut told, alive(4), "alive");
        assert_eq!(told, ["joined", "suspect", "down", "alive"]);
        assert_eq!(p.liveness(&agent(4)), Some(Liveness::Alive));
    }

    #[test]
    fn membership_alive_for_a_joined_peer_is_not_reported_again() {
        let mut p = PeerView::default();
        assert!(p.track(&joined(6)));
        assert!(!p.track(&alive(6)));
        // An agent membership learns about before its info arrived is listed by `alive`.
        assert!(p.track(&alive(7)));
        assert_eq!(p.len(), 2);
    }
}
