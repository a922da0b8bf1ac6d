// `npm run bench -- size [--dir pkg] [--top N]`
//
// What a web app downloads from the package (after `npm run build`): the WebAssembly module
// (`fennec_bg.wasm`) and the JavaScript glue (every `.js` file of the package: the
// wasm-bindgen glue `fennec.js`, the entry `index.js`, the snippets), each raw, gzip -9 and
// brotli (quality 11); the glue's figures are sums over its files, each compressed on its own
// as a server would. `total_*` = wasm + glue. Goal (issue 12): total_gzip <= 250 KB (250 000 B).
//
// `--top N` also logs the module's sections, its N largest functions (shallow body bytes) and
// the N crates with the most function bytes:
// it optimises target/wasm-names/fennec_bg.wasm (the module before wasm-opt, with its names,
// kept by scripts/build.sh) as scripts/optimise-wasm.sh does but keeping the `name` section (wasm-opt -g;
// about 40 s), and reads the names from that.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import { byCrate, profile } from '../wasm-profile.mjs';
import { integer, parseOptions, text } from './options.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** { raw, gzip, brotli } byte counts of one file's contents. */
export function compressedSizes(bytes) {
  return {
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    }).length,
  };
}

async function jsFiles(dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.js')) out.push(path.join(e.parentPath ?? e.path, e.name));
  }
  return out.sort();
}

/** Sizes of the package in `dir`: { wasm, js, total, jsFiles } (each { raw, gzip, brotli }). */
export async function packageSizes(dir) {
  const wasm = compressedSizes(await readFile(path.join(dir, 'fennec_bg.wasm')));
  const files = await jsFiles(dir);
  if (files.length === 0) throw new Error(`${dir}: no .js files (run npm run build)`);
  const js = { raw: 0, gzip: 0, brotli: 0 };
  for (const f of files) {
    const s = compressedSizes(await readFile(f));
    for (const k of Object.keys(js)) js[k] += s[k];
  }
  const total = {};
  for (const k of Object.keys(js)) total[k] = wasm[k] + js[k];
  return { wasm, js, total, jsFiles: files.map((f) => path.relative(dir, f)) };
}

const OPTIONS = { dir: [text(), path.join(ROOT, 'pkg')], top: [integer(0), 0] };

/** The build's module optimised with its names kept (wasm-opt -g), as bytes. */
async function namedOptimisedModule(log) {
  const src = path.join(ROOT, 'target', 'wasm-names', 'fennec_bg.wasm');
  const wasmOpt = path.join(ROOT, 'node_modules', 'binaryen', 'bin', 'wasm-opt');
  // As scripts/optimise-wasm.sh does (its level, then functions in name order).
  const level = [...(process.env.FENNEC_WASM_OPT_LEVEL || '-Oz -ocimfs 20').split(' '), '--reorder-functions-by-name'];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fennec-size-'));
  try {
    log(`wasm-opt ${level.join(' ')} -g ${path.relative(ROOT, src)} (names kept for the profile)`);
    await promisify(execFile)(process.execPath, [wasmOpt, src, ...level, '-g', '-o', path.join(dir, 'm.wasm')])
      .catch((e) => { throw new Error(`${src}: ${e.message} (run npm run build first)`); });
    return await readFile(path.join(dir, 'm.wasm'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function logTop(n, log) {
  const p = profile(await namedOptimisedModule(log));
  log(`optimised with names: ${p.total} B`);
  for (const s of p.sections) log(`  section ${s.name.padEnd(24)} ${String(s.size).padStart(9)} B`);
  const named = p.sections.find((s) => s.name === 'custom:name')?.size ?? 0;
  log(`top ${n} functions (shallow body bytes, % of the module without its name section):`);
  for (const f of p.functions.slice(0, n)) {
    const pct = ((100 * f.size) / (p.total - named)).toFixed(2);
    log(`  ${String(f.size).padStart(7)} ${pct.padStart(5)}%  ${f.name}`);
  }
  log(`top ${n} crates (fennec by module; function bytes, count):`);
  for (const c of byCrate(p.functions).slice(0, n)) {
    const pct = ((100 * c.size) / (p.total - named)).toFixed(2);
    log(`  ${String(c.size).padStart(7)} ${pct.padStart(5)}%  ${c.crate} (${c.count})`);
  }
}

export async function run(args, log) {
  const o = parseOptions(args, OPTIONS);
  o.dir = path.resolve(o.dir);
  const s = await packageSizes(o.dir);
  log(`${path.relative(ROOT, o.dir) || '.'}: wasm ${s.wasm.raw} B (gzip ${s.wasm.gzip}), ` +
    `glue ${s.jsFiles.join(' + ')} ${s.js.raw} B (gzip ${s.js.gzip})`);
  if (o.top > 0) await logTop(o.top, log);
  const flat = {};
  for (const part of ['wasm', 'js', 'total']) {
    for (const k of ['raw', 'gzip', 'brotli']) flat[`${part}_${k}`] = s[part][k];
  }
  return flat;
}
