//! Every wasm32-only part, behind the one `cfg(target_arch = "wasm32")` gate in `lib.rs`: the
//! platform glue that executes what the sans-IO core asks for. No protocol rule lives here.
//!
//! - [`clock`]: wall clock, `setTimeout` timers, the driver's `Clock`, JS error text.
//! - [`sbd_ws`], [`sbd_signal`]: the sbd client core over a `WebSocket`; sbd as a `Signal`;
//!   [`sbd_reconnect`]: that signal reconnecting with back-off, reporting its state.
//! - [`webrtc`]: the WebRTC transport (`RTCPeerConnection`, data channels, relay fallback).
//! - [`idb`] (+ `idb_glue.js`): the IndexedDB op store.
//! - [`bootstrap`]: bootstrap requests through `fetch()`.
//! - [`keystore`]: the per-origin agent key in IndexedDB.
//! - [`lifecycle`]: page visibility / freeze / resume → the membership dozing hint.
//! - [`peer`]: one identity and its joined spaces, each driven by `core::space::run_space`.

pub mod bootstrap;
pub mod clock;
pub mod idb;
pub mod keystore;
pub mod lifecycle;
pub mod peer;
pub mod sbd_reconnect;
pub mod sbd_signal;
pub mod sbd_ws;
pub mod webrtc;
