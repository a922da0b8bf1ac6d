// A twiggy-style size profile of a WebAssembly module: its sections, and its functions by
// body size, named from the module's `name` section (custom section "name", subsection 1,
// WebAssembly core spec, appendix "Name Section"). Used by `npm run bench -- size --top N` on the
// copy of the optimised module that keeps its names (target/wasm-names/, scripts/build.sh).
// Sizes are shallow (a function's own body bytes, not what it calls).

/** Reads an unsigned LEB128 at `i`; [value, next index]. */
function leb(bytes, i) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[i++];
    if (b === undefined) throw new Error('wasm: truncated LEB128');
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) return [value, i];
  }
}

const SECTION_NAMES = ['custom', 'type', 'import', 'function', 'table', 'memory', 'global',
  'export', 'start', 'element', 'code', 'data', 'datacount', 'tag'];

/** The module's sections: [{ id, name, start, size }] (`start`: first byte of the contents). */
export function sections(bytes) {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new Error('wasm: not a WebAssembly module (bad magic)');
  }
  const out = [];
  let i = 8;
  while (i < bytes.length) {
    const id = bytes[i];
    const [size, start] = leb(bytes, i + 1);
    let name = SECTION_NAMES[id] ?? `unknown-${id}`;
    if (id === 0) {
      const [n, j] = leb(bytes, start);
      name = `custom:${new TextDecoder().decode(bytes.subarray(j, j + n))}`;
    }
    out.push({ id, name, start, size });
    i = start + size;
  }
  return out;
}

/** Count of imported functions (they take the first function indices). */
function importedFunctions(bytes, sec) {
  if (!sec) return 0;
  let [count, i] = leb(bytes, sec.start);
  let funcs = 0;
  const skipName = () => { const [n, j] = leb(bytes, i); i = j + n; };
  for (let k = 0; k < count; k++) {
    skipName();
    skipName();
    const kind = bytes[i++];
    if (kind === 0) { funcs++; [, i] = leb(bytes, i); }
    else if (kind === 1) { i++; i = skipLimits(bytes, i); }       // table: reftype, limits
    else if (kind === 2) { i = skipLimits(bytes, i); }            // memory: limits
    else if (kind === 3) { i += 2; }                              // global: valtype, mut
    else if (kind === 4) { i++; [, i] = leb(bytes, i); }          // tag: attr, type index
    else throw new Error(`wasm: unknown import kind ${kind}`);
  }
  return funcs;
}

function skipLimits(bytes, i) {
  const flags = bytes[i++];
  [, i] = leb(bytes, i);
  if (flags & 1) [, i] = leb(bytes, i);
  return i;
}

/** Function names from the "name" custom section (subsection 1): Map index -> name. */
function functionNames(bytes, sec) {
  const names = new Map();
  if (!sec) return names;
  let [n, i] = leb(bytes, sec.start);
  i += n;
  const end = sec.start + sec.size;
  const dec = new TextDecoder();
  while (i < end) {
    const sub = bytes[i++];
    const [size, start] = leb(bytes, i);
    if (sub === 1) {
      let [count, j] = leb(bytes, start);
      for (let k = 0; k < count; k++) {
        let idx, len;
        [idx, j] = leb(bytes, j);
        [len, j] = leb(bytes, j);
        names.set(idx, dec.decode(bytes.subarray(j, j + len)));
        j += len;
      }
    }
    i = start + size;
  }
  return names;
}

/**
 * The profile: { total, sections: [{ name, size }], functions: [{ name, size }] } with the
 * functions largest first (`size`: body bytes including its length prefix).
 */
export function profile(bytes) {
  const secs = sections(bytes);
  const find = (name) => secs.find((s) => s.name === name);
  const names = functionNames(bytes, find('custom:name'));
  const imported = importedFunctions(bytes, find('import'));
  const functions = [];
  const code = find('code');
  if (code) {
    let [count, i] = leb(bytes, code.start);
    for (let k = 0; k < count; k++) {
      const [size, body] = leb(bytes, i);
      const index = imported + k;
      functions.push({ name: names.get(index) ?? `func[${index}]`, size: body - i + size });
      i = body + size;
    }
  }
  functions.sort((a, b) => b.size - a.size);
  return {
    total: bytes.length,
    sections: secs.map((s) => ({ name: s.name, size: s.size })),
    functions,
  };
}

/**
 * Function bytes per crate: [{ crate, size, count }], largest first. A function is counted for
 * the first crate its (mangled-then-demangled) name mentions, e.g. `<fennec[..]::x as core[..]::y>`
 * is fennec's; `core::ptr::drop_in_place::<fennec::T>` (drop glue) is core's. fennec's own
 * functions are split by module (`fennec::browser::webrtc`). The crate hash in `[..]` is the
 * mangling's disambiguator, a 64-bit hash in hex with leading zeros dropped: 15 digits are
 * common (fennec's own is one); 8 at least, so a nameless `func[12]` is not taken for a crate.
 */
export function byCrate(functions) {
  const totals = new Map();
  for (const f of functions) {
    const m = /([A-Za-z_][A-Za-z0-9_]*)\[[0-9a-f]{8,16}\]((?:::[a-z_][a-z0-9_]*){0,2})/.exec(f.name);
    let crate = m ? m[1] : '(unnamed or shim)';
    if (crate === 'fennec' && m[2]) crate += m[2];
    const t = totals.get(crate) ?? { crate, size: 0, count: 0 };
    t.size += f.size;
    t.count += 1;
    totals.set(crate, t);
  }
  return [...totals.values()].sort((a, b) => b.size - a.size);
}
