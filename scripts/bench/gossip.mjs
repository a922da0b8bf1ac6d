// Gossip reconciliation figures from the native simulation (src/core/gossip/sim_tests.rs,
// `gossip_reconcile_report`): Kitsune2's initial-sync and historical-load scenarios, and a store
// of --ops ops (default 100 000) with 1, 10, 100 and 1 000 random differences, each run in
// fennec mode (set reconciliation) and plain-Kitsune2 mode on the same data, plus the
// negentropy crate's range-based reconciliation of the same sets. Figures: rounds to converge,
// encoded gossip bytes, bytes and round trips after detection (after Initiate/Accept).
// Virtual time: they do not depend on this machine's speed (only `fennec_sim_ms` does).
// Release build without LTO, own target dir (the first build takes minutes).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { integer, parseOptions } from './options.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export async function run(args, log) {
  const { ops } = parseOptions(args, { ops: [integer(1), 100_000] });
  log(`cargo test --release gossip_reconcile_report, ${ops} ops (first build takes minutes)`);
  const r = spawnSync(
    'cargo',
    ['test', '--release', '--lib', 'core::gossip::sim_tests::gossip_reconcile_report', '--',
      '--ignored', '--exact', '--nocapture'],
    {
      cwd: root,
      encoding: 'utf8',
      env: {
        ...process.env,
        FENNEC_GOSSIP_OPS: String(ops),
        CARGO_PROFILE_RELEASE_LTO: 'false',
        CARGO_TARGET_DIR: path.join(root, 'target/sim'),
      },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  if (r.status !== 0) throw new Error(`cargo test failed (${r.status}):\n${r.stderr.slice(-4000)}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{"ops":'));
  if (!line) throw new Error(`no result line in:\n${r.stdout.slice(-4000)}`);
  return JSON.parse(line);
}
