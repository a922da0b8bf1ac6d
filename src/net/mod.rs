//! Networking. Sans-IO and native-tested: the sbd relay client core ([`sbd`]), framing of
//! signalling and chunked messages ([`frame`]), the signal path abstraction with an in-page
//! loopback ([`signal`]), the connection policy ([`conn`]) and preflight/admission
//! ([`admission`]). Browser glue (wasm32): the sbd WebSocket ([`sbd_ws`]), the sbd-backed
//! signal ([`sbd_signal`]) and the WebRTC transport ([`webrtc`]).

pub mod admission;
pub mod conn;
pub mod frame;
pub mod sbd;
pub mod signal;

#[cfg(target_arch = "wasm32")]
pub mod sbd_signal;
#[cfg(target_arch = "wasm32")]
pub mod sbd_ws;
#[cfg(target_arch = "wasm32")]
pub mod webrtc;
