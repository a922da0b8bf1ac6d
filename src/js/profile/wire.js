// What the tabs of a profile say to each other on their BroadcastChannel, and how an error
// crosses it. Messages (all structured-clonable; `from`/`to` are tab ids):
//   { t: 'hello', from }                          a new follower asks who leads
//   { t: 'leader', from }                         the sender leads (on taking the lock, and
//                                                 in answer to 'hello')
//   { t: 'req', from, to, id, m, a }              call `m` with arguments `a` at leader `to`
//   { t: 'res', to, id, ok, v } | { ..., e }      its result, or its error (`errorData`)
//   { t: 'event', space, name, event, except }    a space event for every tab but `except`
//   { t: 'peers', space, list }                   the leader's `space.peers()`, for followers

/** The BroadcastChannel and Web Lock names of a node: one per agent and servers. */
export function scopeNames(agentId, bootstrapUrl, signalUrl) {
  const scope = `fennec-node ${agentId} ${bootstrapUrl} ${signalUrl}`;
  return { channel: scope, lock: scope, tabLock: (tab) => `${scope} tab ${tab}` };
}

/** A random tab id (128 bits, hex). */
export function newTabId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** An error as data that survives structured cloning with its class, code and message. */
export function errorData(e) {
  if (e instanceof Error) return { name: e.name, message: e.message, code: e.code };
  return { name: 'Error', message: String(e) };
}

/**
 * The error `errorData` described, rebuilt: a `FennecError` with its code, a
 * `TypeError`/`RangeError`, or an `Error` keeping the original `name`.
 */
export function errorFrom(d, FennecError) {
  if (d.name === 'FennecError') return new FennecError(d.code, d.message);
  if (d.name === 'TypeError') return new TypeError(d.message);
  if (d.name === 'RangeError') return new RangeError(d.message);
  const e = new Error(d.message);
  e.name = d.name;
  return e;
}
