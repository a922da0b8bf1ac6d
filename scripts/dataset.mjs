// Reads a JSONL dataset (plain or .gz) into ops: payload = the line's UTF-8 bytes,
// createdAt = its `ts` field (µs since the Unix epoch). Used by the swarm and the benches.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const DEFAULT_DATASET = path.join(
  path.dirname(fileURLToPath(import.meta.url)), '..', 'www', 'data', 'commits.jsonl.gz');

/** Loads up to `limit` records: [{ line, createdAt }]. Throws naming the file and line on bad input. */
export async function loadDataset(file = DEFAULT_DATASET, limit = Infinity) {
  let buf = await readFile(file);
  if (file.endsWith('.gz')) buf = gunzipSync(buf);
  const out = [];
  const lines = buf.toString('utf8').split('\n');
  for (let i = 0; i < lines.length && out.length < limit; i++) {
    const line = lines[i];
    if (!line.trim()) continue;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON: ${e.message}`);
    }
    const createdAt = Number.isSafeInteger(rec.ts) ? rec.ts : Date.now() * 1000 + out.length;
    out.push({ line, createdAt });
  }
  return out;
}
