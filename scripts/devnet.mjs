#!/usr/bin/env node
// The local devnet: the real kitsune2-bootstrap-srv (bootstrap HTTP API + embedded sbd relay)
// on a free loopback port, and a static server for www/ and pkg/.
//
//   node scripts/devnet.mjs                 start both, print URLs (and the demo page's), stop
//                                           on Ctrl-C
//   node scripts/devnet.mjs -- CMD ARGS...  start both, run CMD with FENNEC_BOOTSTRAP_URL,
//                                           FENNEC_SIGNAL_URL and FENNEC_STATIC_URL set, stop,
//                                           exit with CMD's status
// As a module: `const net = await startDevnet(); ...; await net.stop();`
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOOLS = process.env.FENNEC_TOOLS || path.join(os.homedir(), '.cache', 'fennec-tools');
const BOOTSTRAP_BIN = path.join(TOOLS, 'bin', 'kitsune2-bootstrap-srv');
const READY_TIMEOUT_MS = 30_000;

/**
 * Starts the real bootstrap/sbd server on `listen` (default 127.0.0.1:<free port>; give the
 * address of a stopped one to restart it on the same port); resolves to { url, signalUrl, stop }.
 */
export function startBootstrapServer({ extraArgs = [], listen = '127.0.0.1:0' } = {}) {
  // Rate limiting off: every local tab shares one IP (../shared/toolchain.md).
  const args = ['--listen', listen, '--sbd-disable-rate-limiting', ...extraArgs];
  const child = spawn(BOOTSTRAP_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`bootstrap server not ready in ${READY_TIMEOUT_MS} ms:\n${log}`)), READY_TIMEOUT_MS);
    const fail = (err) => { clearTimeout(timer); child.kill('SIGKILL'); reject(err); };
    child.on('error', (e) => fail(new Error(`cannot start ${BOOTSTRAP_BIN} (run npm run setup): ${e.message}`)));
    child.on('exit', (code) => fail(new Error(`bootstrap server exited with ${code}:\n${log}`)));
    const onData = (chunk) => {
      log += chunk;
      const m = /#kitsune2_bootstrap_srv#listening#([^#]+)#/.exec(log);
      if (!m) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.stdout.off('data', onData);
      child.stdout.resume();
      child.stderr.resume();
      resolve({ url: `http://${m[1]}`, signalUrl: `ws://${m[1]}`, stop: () => stopChild(child) });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c) => { log += c; });
  });
}

function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => { clearTimeout(force); resolve(); });
    child.kill('SIGTERM');
  });
}

const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.wasm': 'application/wasm', '.json': 'application/json', '.css': 'text/css',
  '.gz': 'application/gzip', '.jsonl': 'application/jsonl', '.ts': 'text/plain',
};

/**
 * Serves the project's www/ at /, pkg/ at /pkg/ and the test build target/pkg-testing/ at
 * /pkg-testing/ (scripts/build.sh --testing) on a free loopback port; { url, stop }.
 */
export function startStaticServer({ root = ROOT } = {}) {
  return serveFiles((urlPath) => {
    const rel = urlPath.startsWith('/pkg/') ? urlPath
      : urlPath.startsWith('/pkg-testing/') ? path.join('/target', urlPath)
      : path.join('/www', urlPath);
    return path.join(root, path.normalize(rel).replace(/^(\.\.[/\\])+/, ''));
  });
}

/** Serves the files under `dir` (e.g. a web app's build) on a free loopback port; { url, stop }. */
export function serveDirectory(dir) {
  return serveFiles((urlPath) => path.join(dir, path.normalize(urlPath).replace(/^(\.\.[/\\])+/, '')));
}

/** A static file server on 127.0.0.1:<free port>; `fileOf(urlPath)` maps a URL path to a file. */
function serveFiles(fileOf) {
  const server = http.createServer(async (req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = fileOf(urlPath);
    const target = file.endsWith(path.sep) || urlPath === '/' ? path.join(file, 'index.html') : file;
    try {
      const st = await stat(target);
      if (!st.isFile()) throw new Error('not a file');
      res.writeHead(200, {
        'content-type': MIME[path.extname(target)] || 'application/octet-stream',
        'content-length': st.size,
        'cache-control': 'no-store',
      });
      createReadStream(target).pipe(res);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${urlPath}\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}`, stop: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); }) });
    });
  });
}

/** Starts the bootstrap/sbd server and the static server; { bootstrapUrl, signalUrl, staticUrl, stop }. */
export async function startDevnet(opts = {}) {
  const boot = await startBootstrapServer(opts);
  let web;
  try {
    web = await startStaticServer(opts);
  } catch (e) {
    await boot.stop();
    throw e;
  }
  return {
    bootstrapUrl: boot.url,
    signalUrl: boot.signalUrl,
    staticUrl: web.url,
    stop: () => Promise.all([boot.stop(), web.stop()]).then(() => {}),
  };
}

/** The demo page (www/index.html) with the devnet's server URLs as query parameters. */
export function demoUrl(net) {
  // Readable: loopback URLs hold no '&', '#' or '+'; the page decodes with URLSearchParams.
  const q = (u) => encodeURI(u).replace(/[&#+]/g, encodeURIComponent);
  return `${net.staticUrl}/?bootstrap=${q(net.bootstrapUrl)}&signal=${q(net.signalUrl)}`;
}

async function main() {
  const sep = process.argv.indexOf('--');
  const cmd = sep >= 0 ? process.argv.slice(sep + 1) : [];
  const net = await startDevnet();
  const env = {
    ...process.env,
    FENNEC_BOOTSTRAP_URL: net.bootstrapUrl,
    FENNEC_SIGNAL_URL: net.signalUrl,
    FENNEC_STATIC_URL: net.staticUrl,
  };
  if (cmd.length === 0) {
    console.log(`devnet: bootstrap ${net.bootstrapUrl}  signal ${net.signalUrl}  static ${net.staticUrl}`);
    console.log(`demo: ${demoUrl(net)}`);
    console.log('devnet: Ctrl-C stops it');
    const stop = async () => { await net.stop(); process.exit(0); };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    return;
  }
  const child = spawn(cmd[0], cmd.slice(1), { stdio: 'inherit', env });
  const code = await new Promise((resolve) => {
    child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
    child.on('error', (e) => { console.error(`devnet: cannot run ${cmd[0]}: ${e.message}`); resolve(127); });
  });
  await net.stop();
  process.exit(code);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => { console.error(`devnet: ${e.message}`); process.exit(1); });
}
