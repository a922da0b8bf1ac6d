//! An in-page signal "server" for tests: endpoints created from one [`LoopbackHub`] reach each
//! other by URL, with an optional filter to drop or inspect messages (see
//! [`crate::api::signal`] for the contract it keeps).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::LocalBoxFuture;
use futures::{FutureExt, StreamExt};

use crate::api::signal::{Signal, SignalError, SignalRx};
use crate::model::url::Url;

/// Decides whether the hub delivers a message: `(from, to, bytes) -> deliver?`.
type Filter = Rc<dyn Fn(&Url, &Url, &[u8]) -> bool>;

struct Hub {
    /// Registered endpoints: URL → (registration number, receiver's queue).
    peers: HashMap<Url, (u64, mpsc::UnboundedSender<(Url, Bytes)>)>,
    registrations: u64,
    max_message_bytes: usize,
    filter: Option<Filter>,
    delivered: u64,
    filtered: u64,
}

/// An in-page signal "server": endpoints created from one hub reach each other by URL.
///
/// Delivery is immediate and in order (an unbounded queue per receiver: for tests and
/// single-page use, where both ends live in the same event loop). A test can install a
/// [`filter`](Self::set_filter) to withhold some messages, e.g. every WebRTC offer, to
/// exercise relay fallback; withheld messages are counted, never silently lost from view.
#[derive(Clone)]
pub struct LoopbackHub {
    inner: Rc<RefCell<Hub>>,
}

impl LoopbackHub {
    /// A hub whose messages are at most `max_message_bytes` long (use
    /// [`LoopbackHub::SBD_LIKE`] to mimic the sbd limit).
    pub fn new(max_message_bytes: usize) -> Self {
        LoopbackHub {
            inner: Rc::new(RefCell::new(Hub {
                peers: HashMap::new(),
                registrations: 0,
                max_message_bytes,
                filter: None,
                delivered: 0,
                filtered: 0,
            })),
        }
    }

    /// sbd's payload limit: 20 000-byte messages less the 32-byte header.
    pub const SBD_LIKE: usize = 20_000 - 32;

    /// Registers `url` and returns its signal and receive stream. A second endpoint for the
    /// same URL replaces the first (whose stream then ends).
    pub fn endpoint(&self, url: Url) -> (LoopbackSignal, SignalRx) {
        let (tx, rx) = mpsc::unbounded();
        let mut hub = self.inner.borrow_mut();
        hub.registrations += 1;
        let registration = hub.registrations;
        hub.peers.insert(url.clone(), (registration, tx));
        drop(hub);
        (
            LoopbackSignal {
                hub: Rc::downgrade(&self.inner),
                url,
                registration,
            },
            rx.boxed_local(),
        )
    }

    /// Only messages for which `f(from, to, bytes)` is true are delivered from now on; the
    /// others are counted in [`filtered`](Self::filtered) and dropped (the sender's `send`
    /// still succeeds, as a lossy network would have it).
    pub fn set_filter(&self, f: impl Fn(&Url, &Url, &[u8]) -> bool + 'static) {
        self.inner.borrow_mut().filter = Some(Rc::new(f));
    }

    /// Removes the filter.
    pub fn clear_filter(&self) {
        self.inner.borrow_mut().filter = None;
    }

    /// Messages delivered so far.
    pub fn delivered(&self) -> u64 {
        self.inner.borrow().delivered
    }

    /// Messages withheld by the filter so far.
    pub fn filtered(&self) -> u64 {
        self.inner.borrow().filtered
    }
}

/// One endpoint of a [`LoopbackHub`]. Dropping it unregisters the URL: its receive stream
/// ends and sends to it fail with [`SignalError::Unreachable`].
pub struct LoopbackSignal {
    hub: Weak<RefCell<Hub>>,
    url: Url,
    registration: u64,
}

impl Signal for LoopbackSignal {
    fn local_url(&self) -> &Url {
        &self.url
    }

    fn max_message_bytes(&self) -> usize {
        self.hub
            .upgrade()
            .map_or(0, |h| h.borrow().max_message_bytes)
    }

    fn send(&self, to: &Url, msg: Bytes) -> LocalBoxFuture<'static, Result<(), SignalError>> {
        let r = (|| {
            let hub = self.hub.upgrade().ok_or(SignalError::Closed)?;
            let mut hub = hub.borrow_mut();
            if hub.peers.get(&self.url).map(|p| p.0) != Some(self.registration) {
                return Err(SignalError::Closed);
            }
            if msg.len() > hub.max_message_bytes {
                return Err(SignalError::TooLarge {
                    len: msg.len(),
                    max: hub.max_message_bytes,
                });
            }
            if let Some(f) = hub.filter.clone()
                && !f(&self.url, to, &msg)
            {
                hub.filtered += 1;
                return Ok(());
            }
            let (_, tx) = hub
                .peers
                .get(to)
                .ok_or_else(|| SignalError::Unreachable(to.clone()))?;
            tx.unbounded_send((self.url.clone(), msg))
                .map_err(|_| SignalError::Unreachable(to.clone()))?;
            hub.delivered += 1;
            Ok(())
        })();
        async move { r }.boxed_local()
    }
}

impl Drop for LoopbackSignal {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            let mut hub = hub.borrow_mut();
            // Only unregister if the URL is still ours (not replaced by a newer endpoint).
            if hub.peers.get(&self.url).map(|p| p.0) == Some(self.registration) {
                hub.peers.remove(&self.url);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    fn url(n: u8) -> Url {
        Url::parse(&format!("ws://127.0.0.1:1/peer{n}")).unwrap()
    }

    #[test]
    fn loopback_delivers_in_order_and_reports_errors() {
        let hub = LoopbackHub::new(10);
        let (a, _a_rx) = hub.endpoint(url(1));
        let (b, mut b_rx) = hub.endpoint(url(2));
        for i in 0..3u8 {
            block_on(a.send(&url(2), Bytes::from(vec![i]))).unwrap();
        }
        for i in 0..3u8 {
            assert_eq!(block_on(b_rx.next()), Some((url(1), Bytes::from(vec![i]))));
        }
        assert_eq!(
            block_on(a.send(&url(3), Bytes::new())),
            Err(SignalError::Unreachable(url(3)))
        );
        assert_eq!(
            block_on(a.send(&url(2), Bytes::from(vec![0; 11]))),
            Err(SignalError::TooLarge { len: 11, max: 10 })
        );
        hub.set_filter(|_, _, m| m.first() != Some(&9));
        block_on(a.send(&url(2), Bytes::from_static(&[9]))).unwrap();
        block_on(a.send(&url(2), Bytes::from_static(&[8]))).unwrap();
        assert_eq!(
            block_on(b_rx.next()),
            Some((url(1), Bytes::from_static(&[8])))
        );
        assert_eq!((hub.delivered(), hub.filtered()), (4, 1));
        drop(b);
        assert_eq!(
            block_on(b_rx.next()),
            None,
            "dropping the endpoint ends its stream"
        );
        assert_eq!(
            block_on(a.send(&url(2), Bytes::new())),
            Err(SignalError::Unreachable(url(2)))
        );
    }
}
