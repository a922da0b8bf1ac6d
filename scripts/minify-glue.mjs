#!/usr/bin/env node
// Minifies every `.js` file of a built package in place (esbuild's transform, one file at a
// time: the module graph, file names and `new URL('fennec_bg.wasm', import.meta.url)` stay as
// they are, so bundlers and Node load the package the same way). The JavaScript glue is
// 28-31 KB gzip as written and about 16 KB minified (docs/design.md, "Size"). Names are not
// kept: nothing reads a function's or class's `.name` (the before-init guards are given their
// class names by scripts/package-entry.mjs; errors set `name` themselves).
// Usage: node scripts/minify-glue.mjs pkg
import { transform } from 'esbuild';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) throw new Error('usage: minify-glue.mjs <package dir>');

let before = 0;
let after = 0;
for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
  if (!e.isFile() || !e.name.endsWith('.js')) continue;
  const file = join(e.parentPath ?? e.path, e.name);
  const source = await readFile(file, 'utf8');
  // esnext: no syntax is lowered, only whitespace, identifiers and syntax shortened.
  const { code } = await transform(source, { minify: true, format: 'esm', target: 'esnext', legalComments: 'none', sourcefile: file });
  await writeFile(file, code);
  before += source.length;
  after += code.length;
}
console.log(`minify-glue: ${dir} ${before} -> ${after} B of JavaScript`);
