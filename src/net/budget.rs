//! A byte budget for the queues that browser callbacks fill from the network. A WebSocket's or
//! an `RTCDataChannel`'s `message` event cannot be paused, so a peer sending faster than this
//! tab consumes would grow an unbounded queue until the tab runs out of memory. Each such queue
//! takes bytes from a [`ByteBudget`] when a message is queued and gives them back when it is
//! consumed; a message that does not fit ends the connection it came on (with a reason), so
//! nothing is dropped from the middle of an ordered stream.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};

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

/// The receiving end of a queue accounted in a [`ByteBudget`]: taking an item gives its bytes
/// (`size(item)`, 0 for items that took none) back to the budget. The sender takes them with
/// [`ByteBudget::try_take`] before queueing.
pub struct BudgetedReceiver<T> {
    rx: mpsc::UnboundedReceiver<T>,
    budget: ByteBudget,
    size: fn(&T) -> usize,
}

impl<T> BudgetedReceiver<T> {
    /// Wraps `rx`, whose items' sizes (`size`) were taken from `budget` when queued.
    pub fn new(rx: mpsc::UnboundedReceiver<T>, budget: ByteBudget, size: fn(&T) -> usize) -> Self {
        BudgetedReceiver { rx, budget, size }
    }
}

impl<T> Stream for BudgetedReceiver<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let polled = self.rx.poll_next_unpin(cx);
        if let Poll::Ready(Some(item)) = &polled {
            let n = (self.size)(item);
            self.budget.give_back(n);
        }
        polled
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

    #[test]
    fn the_receiver_gives_back_what_each_item_took() {
        let b = ByteBudget::new(10);
        let (tx, rx) = mpsc::unbounded::<Vec<u8>>();
        let mut rx = BudgetedReceiver::new(rx, b.clone(), Vec::len);
        for n in [4, 6] {
            assert!(b.try_take(n));
            tx.unbounded_send(vec![0; n]).unwrap();
        }
        assert!(!b.try_take(1), "full");
        let first = futures::executor::block_on(rx.next()).unwrap();
        assert_eq!((first.len(), b.used()), (4, 6));
        drop(tx);
        assert_eq!(
            futures::executor::block_on(rx.next()).map(|v| v.len()),
            Some(6)
        );
        assert_eq!(
            (futures::executor::block_on(rx.next()), b.used()),
            (None, 0)
        );
    }
}
