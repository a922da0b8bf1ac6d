//! Networking: framing, the signal path, the connection policy, preflight/admission (all
//! sans-IO, native-tested) and the browser WebRTC transport (wasm32).

pub mod admission;
pub mod conn;
pub mod frame;
pub mod signal;

#[cfg(target_arch = "wasm32")]
pub mod webrtc;
