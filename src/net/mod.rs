//! Networking: the sbd relay client (a sans-IO protocol core plus thin browser WebSocket
//! glue). WebRTC, the `Transport` trait and the simulated network join this module later.

pub mod sbd;

#[cfg(target_arch = "wasm32")]
pub mod sbd_ws;
