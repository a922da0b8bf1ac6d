// scripts/wasm-profile.mjs `byCrate`: a function is counted for the first crate its demangled
// name mentions, whatever the length of the crate's disambiguator (rustc drops leading zeros,
// so fennec's own `fennec[8ecf450b7249c3b]` has 15 hex digits and was once "(unnamed or shim)").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { byCrate } from '../../scripts/wasm-profile.mjs';

test('byCrate names crates with 15- and 16-digit disambiguators, fennec by module', () => {
  const got = byCrate([
    { name: '<fennec[8ecf450b7249c3b]::browser::idb::IdbOpStore>::open::{closure#0}', size: 10 },
    { name: '<fennec[8ecf450b7249c3b]::browser::idb::IdbOpStore>::slice', size: 5 },
    { name: 'sha2[ada869e6b431dd6c]::sha512::compress512', size: 7 },
    { name: 'core[3626d75f67741079]::ptr::drop_in_place::<fennec[8ecf450b7249c3b]::model::op::Op>', size: 3 },
    { name: 'func[12]', size: 2 },
  ]);
  assert.deepEqual(got, [
    { crate: 'fennec::browser::idb', size: 15, count: 2 },
    { crate: 'sha2', size: 7, count: 1 },
    { crate: 'core', size: 3, count: 1 },
    { crate: '(unnamed or shim)', size: 2, count: 1 },
  ]);
});
