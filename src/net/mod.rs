//! Sans-IO networking, native-tested: the sbd relay client ([`sbd`]), framing of signalling
//! and chunked messages ([`frame`]), the connection policy ([`conn`]) and preflight/admission
//! ([`admission`]), the signal reconnect policy ([`reconnect`]), and the byte budget ([`budget`]) that bounds the receive queues
//! the browser glue fills from sockets that cannot be paused. The browser glue that executes their actions (WebSocket, WebRTC) is in
//! `crate::browser`.

pub mod admission;
pub mod budget;
pub mod conn;
pub mod frame;
pub mod reconnect;
pub mod sbd;
