// The bundled dataset (data/commits.jsonl.gz, see data/README.md) as ops, for pages the tests
// and benchmarks drive: payload = the line's UTF-8 bytes, createdAt = its `ts` (µs, the unit of
// OpStore and opId; `space.publish` takes ms: pass createdAt / 1000).

/**
 * Loads the first `limit` distinct lines of the dataset (all of them by default) as
 * `{ payload: Uint8Array, createdAt: number, line: string }`, in file order. Repeated lines
 * (the same op) are kept once.
 */
export async function loadDatasetOps(limit = Infinity) {
  const res = await fetch('/data/commits.jsonl.gz');
  if (!res.ok) throw new Error(`cannot load the dataset: HTTP ${res.status}`);
  const text = await new Response(res.body.pipeThrough(new DecompressionStream('gzip'))).text();
  const enc = new TextEncoder();
  const seen = new Set();
  const ops = [];
  for (const line of text.split('\n')) {
    if (ops.length >= limit) break;
    if (line === '' || seen.has(line)) continue;
    seen.add(line);
    const { ts } = JSON.parse(line);
    if (!Number.isSafeInteger(ts)) throw new Error(`dataset line without an integer ts: ${line}`);
    ops.push({ payload: enc.encode(line), createdAt: ts, line });
  }
  return ops;
}
