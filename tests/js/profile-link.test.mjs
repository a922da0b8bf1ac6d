// Unit tests of the profile node's election, calls and failover (src/js/profile/link.js and
// server.js) on fakes: Web Locks with killable tabs, node's own BroadcastChannel, and wasm
// Peers whose ops live in one shared Map (the profile's IndexedDB).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProfileLink, TabLink } from '../../src/js/profile/link.js';
import { FakeLocks, FakeNode } from './fakes.mjs';

class FennecError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'FennecError';
    this.code = code;
  }
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 5 ms until it returns truthy, or throws naming `what` after 5 s. A
 * BroadcastChannel message takes event-loop turns to arrive, and a stalled process can let a
 * fixed `tick()` run out first; a wait for something to be absent still uses `tick()`. */
async function until(check, what) {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within 5000 ms: ${what}`);
    await tick(5);
  }
}

/** A profile: `tab()` opens a tab (a started ProfileLink with its own events and spaces). */
function profile() {
  const locks = new FakeLocks();
  const ops = new Map();
  const log = [];
  const scope = { agentId: 'agent', bootstrapUrl: 'http://b', signalUrl: `ws://s/${Math.random()}` };
  const tabs = [];
  return {
    locks, ops, log, tabs,
    async tab() {
      const spaces = new Map(); // id -> { name, arc, url }
      const events = [];
      const host = {
        node: new FakeNode(ops, log),
        eventNames: ['op', 'peer', 'error'],
        FennecError,
        deliver: (id, name, e) => { if (spaces.has(id)) events.push([name, e]); },
        joined: () => [...spaces].map(([id, s]) => ({ id, name: s.name, arc: s.arc })),
        rejoined: (id, r) => { spaces.get(id).url = r.url; },
      };
      const link = new ProfileLink(host, scope, { BroadcastChannel, locks: null });
      link.env.locks = locks.client(link.tab);
      await link.start();
      const t = {
        link, host, spaces, events,
        async join(name, arc) {
          const r = await link.call('join', [name, arc]);
          spaces.set(r.id, { name, arc, url: r.url });
          return r;
        },
        publish: (id, bytes, at) => link.call('publish', [id, Uint8Array.from(bytes), at]),
        /** The tab crashes: its locks are freed, it hears and says nothing more. */
        kill() { link.closed = true; link.channel.close(); locks.kill(link.tab); clearInterval(link.peersTimer); },
      };
      tabs.push(t);
      await tick();
      return t;
    },
    close() { for (const t of tabs) if (!t.link.closed) t.kill(); },
  };
}

test('the first tab leads, others follow; calls and sibling op events go through the leader', async () => {
  const p = profile();
  const a = await p.tab();
  const b = await p.tab();
  assert.equal(a.link.role, 'leader');
  assert.equal(b.link.role, 'follower');
  const ja = await a.join('s');
  const jb = await b.join('s', 'full');
  assert.equal(jb.url, ja.url, 'one node');
  assert.equal(p.log.filter((l) => l[0] === 'join').length, 2, 'both joins reach the one node');
  const id = await b.publish(jb.id, [1, 2], 5);
  assert.deepEqual([...p.ops.get(id)], [1, 2], 'stored before the publish resolved');
  await until(() => a.events.length >= 1, 'an op event at the leader tab');
  assert.deepEqual(a.events.map(([n, e]) => [n, e.id, e.from, e.fromUrl]), [['op', id, 'agent', ja.url]],
    'the leader tab gets the op event, naming the node\'s agent and URL');
  assert.equal(b.events.length, 0, 'the publishing tab does not');
  const id2 = await a.publish(ja.id, [3], 6);
  await until(() => b.events.length >= 1, 'an op event at the follower tab');
  assert.deepEqual(b.events.map(([n, e]) => [n, e.id, [...e.payload]]), [['op', id2, [3]]]);
  assert.deepEqual(await b.link.call('get', [jb.id, id2]), Uint8Array.from([3]));
  // publishMany and send of a follower run at the leader: one call, an op event per op.
  const items = [{ payload: Uint8Array.from([7]), createdAt: 8 }, { payload: Uint8Array.from([9]), createdAt: 10 }];
  const many = await b.link.call('publishMany', [jb.id, items]);
  assert.deepEqual(many, ['op-8-7', 'op-10-9']);
  assert.deepEqual(p.log.filter((l) => l[0] === 'publishMany').length, 1, 'one call into the node');
  await until(() => a.events.length >= 3, 'two more op events at the leader tab');
  assert.deepEqual(a.events.slice(1).map(([n, e]) => [n, e.id, e.from]), [['op', 'op-8-7', 'agent'], ['op', 'op-10-9', 'agent']]);
  await b.link.call('send', [jb.id, 'other', Uint8Array.from([1])]);
  assert.deepEqual(p.log.filter((l) => l[0] === 'send'), [['send', ja.url, 'other', [1]]]);
  p.close();
});

test('a leader error reaches the follower as the same class, code and message', async () => {
  const p = profile();
  await p.tab();
  const b = await p.tab();
  await assert.rejects(b.join('bad'), (e) => e instanceof FennecError && e.code === 'signal' && /signal server down/.test(e.message));
  await assert.rejects(b.link.call('publish', ['id-nowhere', new Uint8Array(1), 1]),
    (e) => e instanceof FennecError && e.code === 'left');
  p.close();
});

test('leader gone: the next tab leads, rejoins every tab\'s spaces, and retries the call in flight', async () => {
  const p = profile();
  const a = await p.tab();
  const b = await p.tab();
  const c = await p.tab();
  const ja = await a.join('s');
  await c.join('t', [1, 2]);
  a.host.node.hang = true; // the leader never answers
  const flight = c.publish('id-t', [9], 7);
  await tick();
  a.kill();
  const id = await flight;
  assert.equal(b.link.role, 'leader');
  assert.equal(c.link.role, 'follower');
  assert.deepEqual([...p.ops.get(id)], [9], 'the retried publish is stored');
  const bUrl = b.host.node.url;
  const rejoined = p.log.filter((l) => l[0] === 'join' && l[1] === bUrl).map((l) => [l[2], l[3]]);
  assert.deepEqual(rejoined, [['t', [1, 2]]], 'the new leader joined again the followers\' spaces with their arc');
  assert.equal(c.spaces.get('id-t').url, bUrl, 'the follower learns the new URL');
  assert.notEqual(bUrl, ja.url);
  p.close();
});

test('space events are posted to the other tabs only while another tab joined the space', async () => {
  const p = profile();
  const a = await p.tab();
  const b = await p.tab();
  const spy = new BroadcastChannel(a.link.names.channel);
  const posted = [];
  spy.onmessage = (e) => { if (e.data.t === 'event') posted.push([e.data.name, e.data.event.id]); };
  try {
    const ja = await a.join('s');
    await b.join('t');
    const fire = (id) => p.tabs[0].host.node.spaces.get('s').handlers.get('op')({ id });
    fire('alone');
    await a.publish(ja.id, [1], 1);
    await tick();
    assert.deepEqual(posted, [], 'no other tab joined s: nothing posted');
    assert.deepEqual(a.events.map(([n, e]) => [n, e.id]), [['op', 'alone']], 'the leader tab still gets its events');
    const jb = await b.join('s');
    fire('shared');
    await until(() => posted.length >= 1 && b.events.length >= 1, 'the shared event posted and delivered');
    assert.deepEqual(posted, [['op', 'shared']]);
    assert.deepEqual(b.events.map(([n, e]) => [n, e.id]), [['op', 'shared']]);
    await b.link.call('leave', [jb.id]);
    fire('left');
    await tick();
    assert.deepEqual(posted, [['op', 'shared']], 'b left s: nothing posted again');
  } finally {
    spy.close();
    p.close();
  }
});

test('a call lost to two leaders in a row rejects with FennecError "failover"', async () => {
  const p = profile();
  const a = await p.tab();
  const b = await p.tab();
  await p.tab();
  const d = await p.tab();
  await d.join('s');
  a.host.node.hang = true;
  b.host.node.hang = true;
  const flight = d.publish('id-s', [1], 1);
  await tick();
  a.kill();
  await tick();
  b.kill();
  await assert.rejects(flight, (e) => e instanceof FennecError && e.code === 'failover');
  p.close();
});

test('the node leaves a space when its last tab leaves or goes away', async () => {
  const p = profile();
  const a = await p.tab();
  const b = await p.tab();
  const c = await p.tab();
  await a.join('s');
  await b.join('s');
  await c.join('s');
  await a.link.call('leave', ['id-s']);
  c.kill(); // gone without leaving: the leader learns it from c's lock
  await tick();
  assert.equal(p.log.filter((l) => l[0] === 'leave').length, 0, 'b is still in the space');
  await b.link.close();
  await until(() => p.log.some((l) => l[0] === 'leave'), 'the node leaves');
  assert.deepEqual(p.log.filter((l) => l[0] === 'leave').map((l) => l[2]), ['id-s']);
  p.close();
});

test('a tab\'s own node gives no op event for its own publish, and network events as they come', async () => {
  const events = [];
  const node = new FakeNode(new Map(), []);
  const link = new TabLink({
    node, eventNames: ['op', 'peer', 'error'], FennecError,
    deliver: (id, name, e) => events.push([id, name, e]),
    joined: () => [], rejoined: () => {},
  });
  const j = await link.call('join', ['s', undefined]);
  await link.call('publish', [j.id, Uint8Array.from([1]), 1]);
  assert.deepEqual(events, []);
  node.spaces.get('s').handlers.get('peer')({ kind: 'joined', agent: 'x' });
  assert.deepEqual(events, [[j.id, 'peer', { kind: 'joined', agent: 'x' }]]);
  await link.close();
});
