#!/usr/bin/env node
// Makes `<outdir>/index.js` (+ index.d.ts) the package entry of a wasm-pack build: fills
// src/js/entry.js with the path of the FennecError snippet (src/js/error.js, copied by
// wasm-bindgen under snippets/<crate>-<hash>/) and one guard per function and static method
// that fennec.d.ts declares, so that calls before `await init()` fail clearly, and an export
// of each other class but `Peer` and `Space` (those come from src/js/profile/, copied to
// <outdir>/profile/); then writes the package's package.json (name `fennec-dht`, `exports`,
// `types`, `files`, `sideEffects`) and its README (docs/package-README.md, for its users).
// Usage: node scripts/package-entry.mjs pkg
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const out = process.argv[2];
if (!out) throw new Error('usage: package-entry.mjs <wasm-pack out dir>');

async function findSnippet(dir) {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const found = await findSnippet(p);
      if (found) return found;
    } else if (p.endsWith(join('src', 'js', 'error.js'))) {
      return p;
    }
  }
  return null;
}

const snippet = await findSnippet(join(out, 'snippets'));
if (!snippet) throw new Error(`${out}/snippets: no src/js/error.js (is src/js/error.rs built?)`);
const errorModule = './' + relative(out, snippet).split('\\').join('/');

// One guard per `export function f(...): R;` and per `static m(...): R;` inside
// `export class C { ... }` of the glue's declarations; R = Promise<...> means it rejects.
const dts = await readFile(join(out, 'fennec.d.ts'), 'utf8');
const guards = [];
const classes = [];
let cls = null;
for (const line of dts.split('\n')) {
  let m;
  if ((m = /^export class (\w+)/.exec(line))) {
    cls = m[1];
    if (cls !== 'Peer' && cls !== 'Space') classes.push(cls);
  } else if (/^}/.test(line)) {
    cls = null;
  } else if (!cls && (m = /^export function (\w+)\(.*\): (.+);$/.exec(line)) && m[1] !== 'initSync') {
    guards.push(`export const ${m[1]} = guard(glue.${m[1]}, '${m[1]}', ${m[2].startsWith('Promise<')});`);
  } else if (cls && (m = /^\s+static (\w+)\(.*\): (.+);$/.exec(line))) {
    guards.push(`guardStatic(glue.${cls}, '${cls}', '${m[1]}', ${m[2].startsWith('Promise<')});`);
  }
}
if (!guards.some((g) => g.includes("'connect'"))) throw new Error('fennec.d.ts: Peer.connect not found');

const template = await readFile(join(root, 'src/js/entry.js'), 'utf8');
const entry = template
  .replace('@ERROR_MODULE@', errorModule)
  .replace('// @EXPORTS@', `export { ${classes.join(', ')} } from './fennec.js';`)
  .replace('// @GUARDS@', guards.join('\n'));
await writeFile(join(out, 'index.js'), entry);
await mkdir(join(out, 'profile'), { recursive: true });
for (const f of await readdir(join(root, 'src/js/profile'))) {
  if (f.endsWith('.js') || f.endsWith('.d.ts')) await copyFile(join(root, 'src/js/profile', f), join(out, 'profile', f));
}
await writeFile(join(out, 'index.d.ts'), await readFile(join(root, 'src/js/entry.d.ts'), 'utf8'));
await writeFile(join(out, 'fennec.d.ts'), publicTypes(dts));

await copyFile(join(root, 'docs/package-README.md'), join(out, 'README.md'));
const pkgPath = join(out, 'package.json');
await writeFile(pkgPath, JSON.stringify(packageJson(JSON.parse(await readFile(pkgPath, 'utf8'))), null, 2) + '\n');
console.log(`package-entry: ${out}/index.js (${guards.length} guards, FennecError from ${errorModule})`);

/**
 * The glue's declarations as users compile them (`tsc --strict`, no `skipLibCheck`, the
 * default lib of their target): without wasm-bindgen's `[Symbol.dispose](): void;` members
 * (lib esnext.disposable only; the methods stay at run time, `free()` is the same call), and
 * with `unknown` for the `any`s of `InitOutput` (the raw wasm exports `init()` resolves with),
 * so the public API has no `any`.
 */
function publicTypes(text) {
  const lines = text.split('\n').filter((l) => !/^\s*\[Symbol\.dispose\]\(\): void;$/.test(l));
  let inInit = false;
  return lines.map((l) => {
    if (/^export interface InitOutput \{/.test(l)) inInit = true;
    else if (inInit && /^}/.test(l)) inInit = false;
    return inInit ? l.replace(/\bany\b/g, 'unknown') : l;
  }).join('\n');
}

/**
 * The published package.json, from wasm-pack's (version, description, license and repository
 * come from Cargo.toml). The npm name `fennec` belongs to an unrelated package, hence
 * `fennec-dht`. `exports`: the entry (types first, as TypeScript's resolution wants) and the
 * wasm file, so that bundlers and `init(new URL(...))` callers can resolve it by package path.
 * `sideEffects`: the entry wraps the glue's functions in place (the not-initialised guards), and
 * the snippets are imported by the glue for their definitions. wasm-pack's fennec_bg.wasm.d.ts
 * (the raw wasm exports, typed `any`) is left out: neither declaration file imports it, and
 * TypeScript resolving `fennec-dht/fennec_bg.wasm` through `exports` looks for
 * fennec_bg.d.wasm.ts, not for it.
 */
function packageJson(wasmPack) {
  // Cargo.toml's `repository` is a placeholder (https://example.invalid/...) until the project
  // has a public home; it is copied as it is so that there is one place to change.
  const repository = wasmPack.repository ?? { type: 'git', url: 'https://example.invalid/fennec' };
  return {
    name: 'fennec-dht',
    version: wasmPack.version,
    description: wasmPack.description,
    license: wasmPack.license,
    repository,
    keywords: ['dht', 'p2p', 'webrtc', 'kitsune2', 'wasm', 'indexeddb'],
    type: 'module',
    main: 'index.js',
    module: 'index.js',
    types: 'index.d.ts',
    exports: {
      '.': { types: './index.d.ts', default: './index.js' },
      './fennec_bg.wasm': './fennec_bg.wasm',
      './package.json': './package.json',
    },
    files: ['index.js', 'index.d.ts', 'fennec.js', 'fennec.d.ts', 'fennec_bg.wasm', 'snippets', 'profile',
      'README.md'],
    sideEffects: ['./index.js', './snippets/*', './profile/*'],
  };
}
