// What the packed tarball (target/fennec-dht-*.tgz, made by `npm run build`) ships, file by
// file, without a browser:
// - fennec_bg.wasm has no `name`, `producers` or `target_features` custom section
//   (scripts/optimise-wasm.sh strips them) and none of the `testing` build's exports;
// - no JavaScript file exports, and no .d.ts declares, a `testing`-only name (the
//   `#[wasm_bindgen(js_name = ...)]` items of src/js/testing.rs and src/js/transport.rs:
//   `Transport`, the frame encoders, ...);
// - no shipped .d.ts has an `any` type (comments aside): users compile with `--strict`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let dir, files;

before(async () => {
  const { version } = JSON.parse(await readFile(path.join(ROOT, 'pkg', 'package.json'), 'utf8'));
  const tarball = path.join(ROOT, 'target', `fennec-dht-${version}.tgz`);
  dir = await mkdtemp(path.join(os.tmpdir(), 'fennec-package-shape-'));
  await run('tar', ['-xzf', tarball, '-C', dir]);
  dir = path.join(dir, 'package');
  files = (await readdir(dir, { recursive: true })).map((f) => f.split(path.sep).join('/'));
});

after(async () => {
  if (dir) await rm(path.dirname(dir), { recursive: true, force: true });
});

/** The names `src/js/{testing,transport}.rs` export to JavaScript (only in the `testing` build). */
async function testingNames() {
  const names = [];
  for (const f of ['src/js/testing.rs', 'src/js/transport.rs']) {
    const text = await readFile(path.join(ROOT, f), 'utf8');
    for (const m of text.matchAll(/^#\[wasm_bindgen\(js_name = (\w+)\)\]$/gm)) names.push(m[1]);
  }
  assert.ok(names.includes('Transport'), `testing names read from src: ${names}`);
  return names;
}

/** A WebAssembly module's custom section names and export names (binary format, §5.5). */
function wasmSections(bytes) {
  let pos = 8;
  const u32 = () => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[pos++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
  };
  const name = () => {
    const n = u32();
    const s = new TextDecoder().decode(bytes.subarray(pos, pos + n));
    pos += n;
    return s;
  };
  assert.deepEqual([...bytes.subarray(0, 8)], [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0], 'wasm magic and version 1');
  const custom = [];
  const exports = [];
  while (pos < bytes.length) {
    const id = bytes[pos++];
    const size = u32();
    const end = pos + size;
    if (id === 0) custom.push(name());
    if (id === 7) {
      for (let i = u32(); i > 0; i--) {
        exports.push(name());
        pos++; // export kind
        u32(); // index
      }
    }
    pos = end;
  }
  assert.equal(pos, bytes.length, 'sections end at the end of the module');
  return { custom, exports };
}

/** The names a minified ES module exports: `export{a as B,...}` lists and `export function|class|const B`. */
function jsExportNames(text) {
  const names = [];
  for (const m of text.matchAll(/export\s*\{([^}]*)\}/g)) {
    for (const part of m[1].split(',')) if (part.trim()) names.push(part.trim().split(/\s+as\s+/).at(-1));
  }
  for (const m of text.matchAll(/export\s+(?:default\s+)?(?:async\s+)?(?:function\*?|class|const|let|var)\s+([\w$]+)/g)) {
    names.push(m[1]);
  }
  return names;
}

/** A .d.ts without its comments. */
function declarations(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

test('the wasm module has no name, producers or target_features section and no testing export', async () => {
  const { custom, exports } = wasmSections(await readFile(path.join(dir, 'fennec_bg.wasm')));
  for (const s of ['name', 'producers', 'target_features']) {
    assert.ok(!custom.includes(s), `custom section "${s}" in fennec_bg.wasm (custom sections: ${custom.join(', ')})`);
  }
  assert.ok(exports.includes('version') && exports.includes('opId'), `the API's exports are there: ${exports.length}`);
  const testing = new Set(await testingNames());
  const leaked = exports.filter((e) => testing.has(e) || /^(__wbg_)?transport_/.test(e));
  assert.deepEqual(leaked, [], 'testing-only wasm exports');
});

test('no JavaScript file or declaration of the package exports a testing-only name', async () => {
  const testing = await testingNames();
  const js = files.filter((f) => f.endsWith('.js'));
  assert.ok(js.includes('index.js') && js.includes('fennec.js'), `files: ${files.join(', ')}`);
  for (const f of js) {
    const names = jsExportNames(await readFile(path.join(dir, f), 'utf8'));
    if (f === 'index.js' || f === 'fennec.js') assert.ok(names.includes('Peer'), `${f} exports Peer: ${names}`);
    assert.deepEqual(names.filter((n) => testing.includes(n)), [], `testing-only exports of ${f}`);
  }
  const declared = new RegExp(`\\bexport\\s+(?:declare\\s+)?(?:class|function|const|interface|type)\\s+(${testing.join('|')})\\b`);
  for (const f of files.filter((f) => f.endsWith('.d.ts'))) {
    const m = declared.exec(declarations(await readFile(path.join(dir, f), 'utf8')));
    assert.equal(m, null, `${f} declares the testing-only ${m?.[1]}`);
  }
});

test('no shipped .d.ts has an `any` type', async () => {
  const dts = files.filter((f) => f.endsWith('.d.ts'));
  assert.ok(dts.includes('index.d.ts') && dts.includes('fennec.d.ts'), `declarations: ${dts.join(', ')}`);
  for (const f of dts) {
    const lines = declarations(await readFile(path.join(dir, f), 'utf8')).split('\n').filter((l) => /\bany\b/.test(l));
    assert.deepEqual(lines, [], `\`any\` in ${f}`);
  }
});
