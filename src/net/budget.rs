//! A byte budget for the queues that browser callbacks fill from the network. A WebSocket's or
//! an `RTCDataChannel`'s `message` event cannot be paused, so a peer sending faster than this
//! tab consumes would grow an unbounded queue until the tab runs out of memory. Each such queue
//! takes bytes from a [`ByteBudget`] when a message is queued and gives them back when it is
//! consumed; a message that does not fit ends the connection it came on (with a reason), so
//! nothing is dropped from the middle of an ordered stream.

use std::cell::Cell;
use std::rc::Rc;

/// Bytes queued and not yet consumed, up to a cap. Cheap to clone (clones share the count).
#[derive(Debug, Clone)]
pub struct ByteBudget {
    used: Rc<Cell<usize>>,
    cap: usize,
}

impl ByteBudget {
    /// A budget of `cap` bytes.
    pub fn new(cap: usize) -> Self {
        ByteBudget {
            used: Rc::default(),
            cap,
        }
    }

    /// Takes `n` bytes if they fit under the cap; `false` (nothing taken) if not.
    #[must_use]
    pub fn try_take(&self, n: usize) -> bool {
        let used = self.used.get();
        if used.saturating_add(n) > self.cap {
            return false;
        }
        self.used.set(used + n);
        true
    }

    /// Gives back `n` bytes taken earlier (the message was consumed).
    pub fn give_back(&self, n: usize) {
        self.used.set(self.used.get().saturating_sub(n));
    }

    /// Bytes taken now.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// The cap, bytes.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_cap_and_gives_back() {
        let b = ByteBudget::new(10);
        let c = b.clone();
        assert!(b.try_take(6));
        assert!(!c.try_take(5), "6 + 5 > 10: shared count");
        assert_eq!(b.used(), 6, "a refused take takes nothing");
        assert!(c.try_take(4));
        assert!(!b.try_take(1));
        b.give_back(6);
        assert!(b.try_take(6));
        assert!(!b.try_take(usize::MAX), "no overflow");
        b.give_back(usize::MAX);
        assert_eq!(b.used(), 0, "give back saturates");
    }
}
