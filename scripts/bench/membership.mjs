// Membership (SWIM/foca) figures from the native simulation (src/core/membership/sim_tests.rs,
// `membership_bench`): detection time p50/p95 (ms and probe periods) over 100 crashes (each at
// a seeded point of the probe period) in 50-member clusters, leave-to-`left` p95, false downs
// at 5% loss over 10^5 member-probe periods, and traffic per member with 16 members. Virtual
// time: the figures do not depend on this machine's speed. Release build without LTO (faster
// to compile), own target dir.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export async function run(_args, log) {
  log('cargo test --release membership_bench (first build takes minutes)');
  const r = spawnSync(
    'cargo',
    ['test', '--release', '--lib', 'core::membership::sim_tests::membership_bench', '--',
      '--ignored', '--exact', '--nocapture'],
    {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, CARGO_PROFILE_RELEASE_LTO: 'false', CARGO_TARGET_DIR: path.join(root, 'target/sim') },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  if (r.status !== 0) throw new Error(`cargo test failed (${r.status}):\n${r.stderr.slice(-4000)}`);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{"bench":"membership"'));
  if (!line) throw new Error(`no result line in:\n${r.stdout.slice(-4000)}`);
  const { bench: _bench, ...result } = JSON.parse(line);
  return result;
}
