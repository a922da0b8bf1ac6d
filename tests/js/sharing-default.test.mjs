// The default of `Peer.connect`'s `sharing` option (src/js/profile/api.js `defaultSharing`):
// "profile" only where Web Locks, BroadcastChannel and IndexedDB all exist and the key is the
// origin's; "tab" elsewhere (Node, insecure contexts), where an explicit "profile" is refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeApi } from '../../src/js/profile/api.js';
import { FakeLocks, FakeNode } from './fakes.mjs';

class FennecError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const glue = {
  Peer: { connect: async () => Object.assign(new FakeNode(new Map(), []), { agentId: 'agent', free() {} }) },
  profileEventNames: () => ['op'],
};
const o = { bootstrapUrl: 'http://b', signalUrl: `ws://s/${Math.random()}` };
const browser = () => ({ glue, FennecError, locks: new FakeLocks().client('t'), BroadcastChannel, indexedDB: {} });

async function role(env, options = o) {
  const peer = await makeApi(env).Peer.connect(options);
  const r = peer.role;
  await peer.close();
  return r;
}

test('a browser scope with the origin key shares the profile node by default', async () => {
  assert.equal(await role(browser()), 'leader');
  assert.equal(await role(browser(), { ...o, storage: 'memory' }), 'tab');
  assert.equal(await role(browser(), { ...o, agentKey: new Uint8Array(32) }), 'tab');
});

test('without Web Locks, BroadcastChannel or IndexedDB (Node) the default is "tab"', async () => {
  assert.equal(await role({ ...browser(), locks: undefined }), 'tab');
  assert.equal(await role({ ...browser(), BroadcastChannel: undefined }), 'tab');
  assert.equal(await role({ ...browser(), indexedDB: undefined }), 'tab');
});

test('an explicit "profile" without Web Locks is refused with FennecError "store"', async () => {
  await assert.rejects(makeApi({ ...browser(), locks: undefined }).Peer.connect({ ...o, sharing: 'profile' }),
    (e) => e instanceof FennecError && e.code === 'store' && /needs Web Locks/.test(e.message));
});
