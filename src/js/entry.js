// fennec's package entry, `pkg/index.js`: assembled from this file by
// scripts/package-entry.mjs, which fills in the two marked places (the path of the FennecError
// snippet and one guard per exported function and static method, read from fennec.d.ts).
//
// It exports the wasm-bindgen glue (`./fennec.js`) and `FennecError`, with `Peer` and `Space`
// from ./profile/api.js (src/js/profile/: the same API, on this tab's own network node or on
// the one its browser profile's tabs share; README "One node per browser profile"; the glue's
// classes stay internal, as do its `profile*` argument checks). It refuses any call
// made before `await init()` resolved with `FennecError` code "not-initialised" ("fennec: call
// `await init()` first"): the glue alone fails with "Cannot read properties of undefined".
// Promise-returning calls (`Peer.connect`, `OpStore.open`, ...) reject, others throw, as WebIDL
// operations do. The guards wrap the glue's functions and static methods in place.
import wbgInit, { initSync as wbgInitSync } from './fennec.js';
import * as glue from './fennec.js';
import { FennecError } from '@ERROR_MODULE@';
import { makeApi } from './profile/api.js';

// @EXPORTS@
export { FennecError };

/** `Peer` and `Space` (src/js/profile/api.js) on the glue, Web Locks and BroadcastChannel. */
export const { Peer, Space } = makeApi({
  glue,
  FennecError,
  locks: globalThis.navigator && globalThis.navigator.locks,
  BroadcastChannel: globalThis.BroadcastChannel,
  indexedDB: globalThis.indexedDB,
});

let ready = false;

/** Whether `init()` (or `initSync()`) has completed. */
export function initialised() {
  return ready;
}

function notInitialised(what) {
  return new FennecError(
    'not-initialised',
    `fennec: call \`await init()\` first (${what} was called before init() resolved)`,
  );
}

/** `f`, refusing calls before init: a rejected promise if `f` returns one, else a throw. */
function guard(f, what, returnsPromise) {
  return function guarded(...args) {
    if (!ready) {
      const e = notInitialised(what);
      if (returnsPromise) return Promise.reject(e);
      throw e;
    }
    return f.apply(this, args);
  };
}

/** Replaces the static method `name` of `cls` (named `clsName`: the shipped glue is minified, so
 * `cls.name` is not the API name) by its guarded form. */
function guardStatic(cls, clsName, name, returnsPromise) {
  const f = cls[name];
  Object.defineProperty(cls, name, {
    value: guard(f, `${clsName}.${name}`, returnsPromise),
    writable: true,
    enumerable: false,
    configurable: true,
  });
}

/**
 * Loads and instantiates the WebAssembly module (the glue's `init`, same arguments); every
 * other export works once it resolved. Calling it again is harmless. In Node, `init()` and
 * `init(path or file: URL)` read the file (Node's `fetch` has no `file:` URLs); bytes, a
 * `WebAssembly.Module` and http(s) URLs work everywhere.
 */
export default async function init(...args) {
  const out = await wbgInit(...(await nodeFileArgs(args)));
  ready = true;
  return out;
}

/** True in Node (and Node-compatible runtimes), where `process.versions.node` is set. */
function inNode() {
  return typeof process === 'object' && process !== null && typeof process.versions?.node === 'string';
}

/**
 * `init`'s arguments with a wasm file to read replaced by its bytes, in Node only: no
 * argument (the package's own fennec_bg.wasm), a path, or a `file:` URL (string or `URL`),
 * bare or as `{ module_or_path }`. Anything else is passed on unchanged.
 */
async function nodeFileArgs(args) {
  if (!inNode()) return args;
  const [a] = args;
  const wrapped = a !== null && typeof a === 'object' && 'module_or_path' in a;
  const src = wrapped ? a.module_or_path : a;
  let file = null;
  if (src === undefined) file = new URL('./fennec_bg.wasm', import.meta.url);
  else if (src instanceof URL && src.protocol === 'file:') file = src;
  else if (typeof src === 'string' && src.startsWith('file:')) file = new URL(src);
  // A path: no URL scheme, or a Windows drive letter.
  else if (typeof src === 'string' && (!/^[a-z][a-z0-9+.-]*:/i.test(src) || /^[a-z]:[\\/]/i.test(src))) file = src;
  if (file === null) return args;
  // Not a literal specifier, so that browser bundlers leave this Node-only import alone.
  const fs = 'node:fs/promises';
  const { readFile } = await import(/* @vite-ignore */ fs);
  const bytes = await readFile(file);
  // Always as `{ module_or_path }`: the glue warns that a bare argument is deprecated.
  return [{ ...(wrapped ? a : {}), module_or_path: bytes }, ...args.slice(1)];
}

/** Synchronous `init` from compiled module bytes (the glue's `initSync`). */
export function initSync(...args) {
  const out = wbgInitSync(...args);
  ready = true;
  return out;
}

// @GUARDS@
