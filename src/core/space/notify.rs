//! [`Space::send_notify`] and the NOTIFY handler: host bytes to one peer agent (Kitsune2
//! `crates/api/src/space.rs`, `Space::send_notify`: "send a notify message to a remote
//! agent"; best effort, no acknowledgement, no retry).

use bytes::Bytes;

use super::{SendKind, SendTicket, Space, SpaceEvent};
use crate::model::id::AgentId;
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::wire::encode_notify;

/// Largest NOTIFY payload (bytes): 1 MiB, a quarter of [`crate::wire::MAX_FRAME_BYTES`], so
/// that it travels in one frame with room for the header.
pub const MAX_NOTIFY_BYTES: usize = 1 << 20;

/// Why [`Space::send_notify`] sent nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The data is over [`MAX_NOTIFY_BYTES`].
    #[error("a notify message is at most {MAX_NOTIFY_BYTES} bytes, got {0}")]
    TooLarge(usize),
    /// The local agent left the space.
    #[error("the space was left")]
    Left,
    /// `to` is the local agent.
    #[error("cannot send a message to ourselves")]
    ToSelf,
    /// No live agent info with a URL is held for `to` (unknown, expired, left or blocked), or
    /// membership declared it down.
    #[error("agent {0} is not a reachable peer of this space")]
    Unreachable(AgentId),
}

impl Space {
    /// Sends `data` to agent `to` in a NOTIFY frame over its connection (opened if needed);
    /// the transport's outcome comes as [`SpaceEvent::NotifySent`] with the returned ticket.
    /// The receiver reports it as [`SpaceEvent::Notified`] if it admits us.
    ///
    /// # Errors
    /// [`NotifyError`]; nothing is sent then.
    pub fn send_notify(
        &mut self,
        now: Timestamp,
        to: &AgentId,
        data: Bytes,
    ) -> Result<SendTicket, NotifyError> {
        if data.len() > MAX_NOTIFY_BYTES {
            return Err(NotifyError::TooLarge(data.len()));
        }
        if self.left {
            return Err(NotifyError::Left);
        }
        if to == &self.agent {
            return Err(NotifyError::ToSelf);
        }
        let url = self
            .peers
            .get(now, to)
            .filter(|i| !i.is_tombstone && !self.peers.is_blocked(to))
            .and_then(|i| i.url.clone())
            .filter(|u| !self.peers.is_unresponsive(now, u))
            .ok_or_else(|| NotifyError::Unreachable(to.clone()))?;
        let ticket = self.next_ticket;
        let frame = encode_notify(&self.cfg.space, data);
        self.send(url, frame, SendKind::Notify);
        self.pump(now);
        Ok(ticket)
    }

    /// A NOTIFY from admitted peer `from` (its agents `agents`): reported to the app.
    pub(super) fn on_notify(&mut self, from: &Url, agents: &[AgentId], data: Bytes) {
        let agent = match agents {
            [a] => Some(a.clone()),
            _ => None,
        };
        self.emit(SpaceEvent::Notified {
            agent,
            from: from.clone(),
            data,
        });
    }

    /// The one live agent at `url`, if exactly one.
    pub(super) fn agent_at(&self, now: Timestamp, url: &Url) -> Option<AgentId> {
        match &self.peers.by_url(now, url)[..] {
            [a] => Some(a.agent.clone()),
            _ => None,
        }
    }
}
