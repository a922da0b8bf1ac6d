#!/usr/bin/env bash
# Upstream sbd client conformance: runs `sbd-o-bahn-client-tester-bin` (holochain/sbd's client
# suite, installed by scripts/setup.sh) against examples/sbd_o_bahn_runner.rs, which drives our
# sans-IO sbd core (src/net/sbd.rs) over a native WebSocket. The tester starts its own sbd
# server. Exits non-zero if the suite fails, hangs (timeout) or cannot run.
#
# Then, because that suite only relays two short messages, a soak against the real
# kitsune2-bootstrap-srv (embedded sbd) with a tight rate limit: full-size messages must all
# arrive in order, which only works if the client paces by the server's `lbrt` (a client that
# does not is dropped after two messages). Skipped with SBD_SOAK=0.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/versions.sh

tester="$FENNEC_TOOLS/bin/sbd-o-bahn-client-tester-bin"
[ -x "$tester" ] || { echo "sbd-conformance: $tester missing: run scripts/setup.sh" >&2; exit 1; }

cargo build -q --example sbd_o_bahn_runner
runner="${CARGO_TARGET_DIR:-$PWD/target}/debug/examples/sbd_o_bahn_runner"
[ -x "$runner" ] || { echo "sbd-conformance: runner not built at $runner" >&2; exit 1; }

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
timeout "${SBD_CONFORMANCE_TIMEOUT:-300}" "$tester" "$runner" 2>&1 | tee "$log" || status=$?
# The tester panics ("TEST FAILED", non-zero) when a case fails; also insist on its report
# saying so, so that a crash before the report is never read as a pass.
if [ "$status" -ne 0 ] || ! grep -q 'failed: \[\]' "$log" || ! grep -q 'passed: \[' "$log"; then
  echo "sbd-conformance: FAILED (exit $status)" >&2
  exit 1
fi
echo "sbd-conformance: o-bahn suite passed"

[ "${SBD_SOAK:-1}" = 0 ] && exit 0
srv="$FENNEC_TOOLS/bin/kitsune2-bootstrap-srv"
[ -x "$srv" ] || { echo "sbd-conformance: $srv missing: run scripts/setup.sh" >&2; exit 1; }
srv_log="$(mktemp)"
# 2000 kbit/s per IP (4000 ns/B; two connections => lbrt 8000), a burst of two full messages.
"$srv" --listen 127.0.0.1:0 --sbd-limit-ip-kbps 2000 --sbd-limit-ip-byte-burst 40000 \
  >"$srv_log" 2>&1 &
srv_pid=$!
trap 'kill "$srv_pid" 2>/dev/null || true; rm -f "$log" "$srv_log"' EXIT
addr=""
for _ in $(seq 100); do
  addr="$(sed -n 's/^#kitsune2_bootstrap_srv#listening#\(.*\)#$/\1/p' "$srv_log" | head -n1)"
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$srv_log" >&2; echo "sbd-conformance: server did not start" >&2; exit 1; }
timeout 120 "$runner" soak "$addr" "${SBD_SOAK_MESSAGES:-20}" \
  || { echo "sbd-conformance: soak FAILED" >&2; exit 1; }
echo "sbd-conformance: passed"
