//! Runner for the upstream sbd client conformance suite (`sbd-o-bahn-client-tester` 0.4.0)
//! that drives fennec's sans-IO sbd core (`fennec::net::sbd`) over a native WebSocket.
//! `scripts/sbd-conformance.sh` builds and runs it.
//!
//! Line protocol (stdin/stdout, from the tester's docs): we print `CMD/READY`, then read
//! `CMD/CONNECT/<id>/<addr>[/<addr>…]`, `CMD/SEND/<id>/<hex pubkey>/<hex msg>` and
//! `CMD/CLOSE/<id>`, and print `CMD/CONNECT/<id>/<hex own pubkey>` (once `srdy` arrived, so
//! peers can reach us), `CMD/RECV/<id>/<hex from>/<hex msg>` and `CMD/CLOSE/<id>`.
//! Diagnostics go to stderr.
//!
//! `sbd_o_bahn_runner soak <ip:port> <count>` is a second mode for a real sbd server with rate
//! limiting on: two connections, `count` full-size (19 968-byte) forwards from one to the
//! other, checked in order. A client that ignored `lbrt` would be dropped by the server.
//!
//! Why `tungstenite`: it is a small, blocking WebSocket with no async runtime, which fits a
//! thread per connection: each thread owns its socket and its `SbdClient`, reads with a
//! socket timeout no longer than the core's next wake-up (tungstenite resumes cleanly after a
//! timed-out read), and picks up app commands from a channel between reads. The library
//! itself stays free of tokio; this is a dev-dependency for native targets only.
//!
//! Native only (threads, TCP); on wasm32 it is an empty program so that
//! `cargo clippy --target wasm32-unknown-unknown --all-targets` still builds every target.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    native::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::collections::{HashMap, VecDeque};
    use std::io::BufRead;
    use std::net::{SocketAddr, TcpStream};
    use std::process::ExitCode;
    use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
    use std::time::{Duration, Instant};

    use bytes::Bytes;

    use fennec::net::sbd::{
        CloseReason, MAX_MESSAGE_BYTES, MAX_PAYLOAD_BYTES, ProtocolError, PubKey, SbdClient,
        SbdConfig, SbdEvent, SendError,
    };
    use tungstenite::protocol::WebSocketConfig;
    use tungstenite::{Message, WebSocket};

    /// Longest wait for socket input before looking at app commands again.
    const MAX_WAIT: Duration = Duration::from_millis(20);

    enum Cmd {
        Send(PubKey, Vec<u8>),
        Close,
    }

    /// What a connection thread reports.
    enum Out {
        /// `srdy` arrived: our key and the server's `lbrt` (ns per byte) at that moment.
        Ready(PubKey, u64),
        /// A forward from a peer.
        Recv(PubKey, Bytes),
        /// The connection is over.
        Closed(String),
    }

    pub fn main() -> ExitCode {
        let args: Vec<String> = std::env::args().collect();
        if let [_, mode, addr, count] = args.as_slice()
            && mode == "soak"
        {
            return soak(addr, count.parse().unwrap_or(20));
        }
        o_bahn();
        ExitCode::SUCCESS
    }

    /// The tester's line protocol.
    fn o_bahn() {
        println!("CMD/READY");
        let mut conns: HashMap<u64, Sender<Cmd>> = HashMap::new();
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let parts: Vec<&str> = line.trim().split('/').collect();
            match parts.as_slice() {
                ["CMD", "CONNECT", id, addrs @ ..] => {
                    let Ok(id) = id.parse::<u64>() else {
                        eprintln!("runner: bad id in {line:?}");
                        continue;
                    };
                    let (tx, rx) = mpsc::channel();
                    conns.insert(id, tx);
                    let addrs: Vec<String> = addrs.iter().map(|s| s.to_string()).collect();
                    std::thread::spawn(move || {
                        run_connection(&addrs, rx, |out| match out {
                            Out::Ready(pk, _) => println!("CMD/CONNECT/{id}/{}", to_hex(&pk.0)),
                            Out::Recv(from, msg) => {
                                println!("CMD/RECV/{id}/{}/{}", to_hex(&from.0), to_hex(&msg))
                            }
                            Out::Closed(reason) => {
                                eprintln!("runner {id}: closed: {reason}");
                                println!("CMD/CLOSE/{id}");
                            }
                        })
                    });
                }
                ["CMD", "SEND", id, pk, msg] => {
                    let parsed = (
                        id.parse::<u64>().ok(),
                        from_hex(pk).and_then(|k| PubKey::from_slice(&k).ok()),
                        from_hex(msg),
                    );
                    match parsed {
                        (Some(id), Some(to), Some(msg)) => {
                            if let Some(tx) = conns.get(&id) {
                                let _ = tx.send(Cmd::Send(to, msg));
                            }
                        }
                        _ => eprintln!("runner: bad SEND {line:?}"),
                    }
                }
                ["CMD", "CLOSE", id, ..] => {
                    if let Some(tx) = id.parse::<u64>().ok().and_then(|id| conns.remove(&id)) {
                        let _ = tx.send(Cmd::Close);
                    }
                }
                _ => eprintln!("runner: ignoring {line:?}"),
            }
        }
    }

    /// One connection: connect, then loop feeding the core until it closes; `emit` gets what
    /// happens, ending with exactly one [`Out::Closed`].
    fn run_connection(addrs: &[String], rx: Receiver<Cmd>, mut emit: impl FnMut(Out)) {
        let Some((mut ws, mut core)) = connect(addrs) else {
            emit(Out::Closed(format!(
                "could not connect to any of {addrs:?}"
            )));
            return;
        };
        let mut pending: VecDeque<(PubKey, Vec<u8>)> = VecDeque::new();
        loop {
            // App commands; sends that meet back-pressure wait here for `Writable`.
            loop {
                match rx.try_recv() {
                    Ok(Cmd::Send(to, msg)) => pending.push_back((to, msg)),
                    Ok(Cmd::Close) | Err(TryRecvError::Disconnected) => {
                        core.close(CloseReason::Local)
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            while let Some((to, msg)) = pending.front() {
                match core.send(to, msg) {
                    Ok(()) => {}
                    Err(SendError::Full { .. }) => break,
                    Err(e) => eprintln!("runner: send refused: {e}"),
                }
                pending.pop_front();
            }

            // Timers, then whatever the core wants on the wire.
            let now = crate::native::now();
            core.handle_timeout(now);
            while let Some(out) = core.poll_transmit(now) {
                if let Err(e) = ws.send(Message::Binary(out.into())) {
                    core.close(CloseReason::Transport(format!("send: {e}")));
                    break;
                }
            }

            while let Some(ev) = core.poll_event() {
                match ev {
                    SbdEvent::Ready => emit(Out::Ready(*core.pub_key(), core.limit_byte_nanos())),
                    SbdEvent::Message { from, payload } => emit(Out::Recv(from, payload)),
                    SbdEvent::Writable => {}
                    SbdEvent::Closed { reason } => {
                        let _ = ws.close(None);
                        let _ = ws.flush();
                        emit(Out::Closed(reason.to_string()));
                        return;
                    }
                }
            }

            // Wait for input, no longer than the core's next wake-up.
            let wait = core
                .poll_timeout()
                .map(|t| {
                    Duration::from_micros(t.micros_since(crate::native::now()).max(1_000) as u64)
                })
                .unwrap_or(MAX_WAIT)
                .min(MAX_WAIT);
            let _ = ws.get_ref().set_read_timeout(Some(wait));
            match ws.read() {
                Ok(Message::Binary(b)) => core.handle_message(b),
                Ok(Message::Text(_)) => core.close(ProtocolError::TextMessage.into()),
                Ok(Message::Close(f)) => {
                    core.close(CloseReason::Transport(format!("server closed: {f:?}")))
                }
                // Pings are answered by tungstenite itself.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => core.close(CloseReason::Transport(format!("read: {e}"))),
            }
        }
    }

    /// Soak mode: `count` full-size forwards from connection A to connection B on one server.
    fn soak(addr: &str, count: usize) -> ExitCode {
        let addrs = vec![addr.to_string()];
        let mut conns = Vec::new();
        for _ in 0..2 {
            let (ctx, crx) = mpsc::channel();
            let (otx, orx) = mpsc::channel();
            let a = addrs.clone();
            std::thread::spawn(move || {
                run_connection(&a, crx, |o| {
                    let _ = otx.send(o);
                })
            });
            conns.push((ctx, orx));
        }
        let mut keys = Vec::new();
        for (_, orx) in &conns {
            match orx.recv_timeout(Duration::from_secs(20)) {
                Ok(Out::Ready(pk, lbrt)) => {
                    eprintln!("soak: {pk} ready, lbrt {lbrt} ns/B");
                    keys.push(pk);
                }
                Ok(Out::Closed(r)) => return fail(&format!("connect: {r}")),
                _ => return fail("connect: no srdy within 20 s"),
            }
        }
        let (a, b) = (&conns[0], &conns[1]);
        let start = Instant::now();
        for i in 0..count {
            let mut payload = vec![(i % 251) as u8; MAX_PAYLOAD_BYTES];
            payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let _ = a.0.send(Cmd::Send(keys[1], payload));
        }
        for i in 0..count {
            match b.1.recv_timeout(Duration::from_secs(30)) {
                Ok(Out::Recv(from, msg)) => {
                    let ok = from == keys[0]
                        && msg.len() == MAX_PAYLOAD_BYTES
                        && msg[..8] == (i as u64).to_be_bytes()
                        && msg[8..].iter().all(|x| *x == (i % 251) as u8);
                    if !ok {
                        return fail(&format!("message {i} wrong or out of order"));
                    }
                }
                Ok(Out::Closed(r)) => return fail(&format!("receiver closed: {r}")),
                Ok(Out::Ready(..)) => {}
                Err(_) => {
                    let why = match a.1.try_recv() {
                        Ok(Out::Closed(r)) => format!("sender closed: {r}"),
                        _ => "timeout".to_string(),
                    };
                    return fail(&format!("message {i} of {count} missing: {why}"));
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        if let Ok(Out::Closed(r)) = a.1.try_recv() {
            return fail(&format!("sender closed: {r}"));
        }
        let bytes = count * MAX_MESSAGE_BYTES;
        println!(
            "soak: {count} messages ({bytes} B) relayed in order in {secs:.2} s ({:.0} kB/s), \
             sender never dropped",
            bytes as f64 / secs / 1000.0
        );
        for (ctx, _) in &conns {
            let _ = ctx.send(Cmd::Close);
        }
        ExitCode::SUCCESS
    }

    fn fail(why: &str) -> ExitCode {
        eprintln!("soak: FAILED: {why}");
        ExitCode::FAILURE
    }

    /// Opens a WebSocket with a fresh core (fresh key) to the first address that answers.
    fn connect(addrs: &[String]) -> Option<(WebSocket<TcpStream>, SbdClient)> {
        for addr in addrs {
            let Ok(sa) = addr.parse::<SocketAddr>() else {
                eprintln!("runner: bad address {addr:?}");
                continue;
            };
            let core = match SbdClient::generate(SbdConfig::default(), crate::native::now()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("runner: cannot make a client: {e}");
                    return None;
                }
            };
            let url = core.url(&format!("ws://{addr}"));
            let stream = match TcpStream::connect_timeout(&sa, Duration::from_secs(5)) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("runner: tcp connect {addr}: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            // A blocking handshake, bounded by a read timeout.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            // The core enforces the 20 000-byte sbd limit with a reason; the socket only caps
            // memory a little above it.
            let cfg = WebSocketConfig::default()
                .max_message_size(Some(4 * MAX_MESSAGE_BYTES))
                .max_frame_size(Some(4 * MAX_MESSAGE_BYTES));
            match tungstenite::client::client_with_config(url.as_str(), stream, Some(cfg)) {
                Ok((ws, _response)) => return Some((ws, core)),
                Err(e) => eprintln!("runner: websocket handshake {url}: {e}"),
            }
        }
        None
    }

    fn to_hex(b: &[u8]) -> String {
        use std::fmt::Write;
        b.iter()
            .fold(String::with_capacity(b.len() * 2), |mut s, x| {
                let _ = write!(s, "{x:02x}");
                s
            })
    }

    fn from_hex(s: &str) -> Option<Vec<u8>> {
        if !s.len().is_multiple_of(2) || !s.is_ascii() {
            return None;
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
            .collect()
    }

    /// The wall clock (the library itself reads none).
    pub fn now() -> fennec::Timestamp {
        fennec::Timestamp::from_system_time(std::time::SystemTime::now())
    }
}
