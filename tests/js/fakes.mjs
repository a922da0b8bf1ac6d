// Fakes for unit tests of src/js/profile/ under node: a Web Locks LockManager whose clients
// (tabs) can be killed, and a wasm Peer/Space whose ops live in one Map shared by every tab
// (as the profile's IndexedDB is).

/** A LockManager (https://w3c.github.io/web-locks/) for several tabs; `client(tab)` is one tab's `navigator.locks`. */
export class FakeLocks {
  constructor() {
    this.held = new Map(); // name -> { tab, release }
    this.queue = []; // { name, tab, cb, resolve, reject, signal }
  }

  client(tab) {
    return { request: (name, opts, cb) => this.request(tab, name, typeof opts === 'function' ? {} : opts, cb || opts) };
  }

  request(tab, name, opts, cb) {
    return new Promise((resolve, reject) => {
      const r = { name, tab, cb, resolve, reject };
      if (opts.signal) {
        opts.signal.addEventListener('abort', () => {
          const i = this.queue.indexOf(r);
          if (i >= 0) { this.queue.splice(i, 1); reject(new Error('AbortError')); }
        });
      }
      if (!this.held.has(name)) this.grant(r);
      else if (opts.ifAvailable) Promise.resolve(cb(null)).then(resolve, reject);
      else this.queue.push(r);
    });
  }

  grant(r) {
    const entry = { tab: r.tab };
    this.held.set(r.name, entry);
    const done = (settle) => (v) => {
      if (this.held.get(r.name) !== entry) return;
      this.held.delete(r.name);
      settle(v);
      const next = this.queue.findIndex((q) => q.name === r.name);
      if (next >= 0) this.grant(this.queue.splice(next, 1)[0]);
    };
    entry.release = done(r.resolve);
    Promise.resolve().then(() => r.cb({ name: r.name })).then(entry.release, done(r.reject));
  }

  /** The tab is gone (closed or crashed): its locks are freed and its requests dropped. */
  kill(tab) {
    this.queue = this.queue.filter((q) => q.tab !== tab);
    for (const e of [...this.held.values()]) if (e.tab === tab) e.release();
  }
}

/** A wasm Peer of the fake network; `ops` is shared by every tab of the profile. */
export class FakeNode {
  constructor(ops, log) {
    this.ops = ops;
    this.log = log;
    this.agentId = 'agent';
    this.spaces = new Map();
    this.url = `ws://node/${Math.random()}`;
    this.hang = false;
  }

  async join(name, opts) {
    this.log.push(['join', this.url, name, opts && opts.arc]);
    if (name === 'bad') {
      const e = new Error('peer.join: joining "bad": signal server down');
      e.name = 'FennecError';
      e.code = 'signal';
      throw e;
    }
    let s = this.spaces.get(name);
    if (!s) {
      s = new FakeSpace(this, name);
      this.spaces.set(name, s);
    }
    return s;
  }

  async close() {
    await Promise.all([...this.spaces.values()].map((s) => s.leave()));
  }
}

class FakeSpace {
  constructor(node, name) {
    this.node = node;
    this.id = `id-${name}`;
    this.url = node.url;
    this.handlers = new Map();
  }

  async publish(payload, { createdAt }) {
    if (this.node.hang) return new Promise(() => {});
    const id = `op-${createdAt}-${[...payload].join('.')}`;
    this.node.ops.set(id, payload);
    return id;
  }

  async publishMany(items) {
    this.node.log.push(['publishMany', this.url, items.length]);
    return Promise.all(items.map((i) => this.publish(i.payload, i)));
  }

  async send(agent, data) { this.node.log.push(['send', this.url, agent, [...data]]); }

  async get(id) { return this.node.ops.get(id); }

  async stats() { return { ops: this.node.ops.size }; }

  peers() { return [{ agent: 'other', url: 'ws://other' }]; }

  on(name, cb) { this.handlers.set(name, cb); }

  async leave() {
    this.node.log.push(['leave', this.node.url, this.id]);
    this.node.spaces.delete(this.id.slice(3));
  }
}
