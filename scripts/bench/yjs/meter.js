// Browser-level receive meter, added as an init script to every context of `npm run bench --
// peers` (fennec and Yjs alike) so both sides are measured the same way. Counts, per page:
//   rtc: RTCTransportStats.bytesReceived summed over every RTCPeerConnection the page created
//        (DTLS + SCTP + data-channel payload; ICE/STUN checks are not in transport stats);
//        a closed connection keeps its last reading;
//   ws:  the payload bytes of every WebSocket message received (the sbd relay and signaling for
//        fennec, the y-webrtc signaling server for Yjs; frame headers not counted).
// Not counted: HTTP (the page, the bundle, fennec's bootstrap requests).
(() => {
  const conns = [];
  const NativePC = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends NativePC {
    constructor(...args) {
      super(...args);
      conns.push({ pc: this, last: 0 });
    }
  };
  let wsRx = 0;
  const encoder = new TextEncoder();
  const NativeWS = window.WebSocket;
  window.WebSocket = class extends NativeWS {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        const d = e.data;
        wsRx += typeof d === 'string' ? encoder.encode(d).length : (d.byteLength ?? d.size ?? 0);
      });
    }
  };
  /** { rtc, ws } bytes received so far by this page. */
  window.benchRxBytes = async () => {
    let rtc = 0;
    for (const c of conns) {
      if (c.pc.connectionState !== 'closed') {
        try {
          let sum = 0;
          (await c.pc.getStats()).forEach((r) => { if (r.type === 'transport') sum += r.bytesReceived || 0; });
          c.last = Math.max(c.last, sum);
        } catch { /* closed meanwhile: keep the last reading */ }
      }
      rtc += c.last;
    }
    return { rtc, ws: wsRx };
  };
})();
