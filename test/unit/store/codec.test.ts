import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyzeLayer } from '../../../src/engine/methods/analyzeLayer';
import { CorruptEntry, decodeEntry, encodeEntry } from '../../../src/engine/store/codec';
import { statistics, activations, weights } from '../methods/helpers';

const KEY = 'ab'.repeat(32);

test('an L²QER analysis comes back from an entry equal, typed arrays with their types, in less than JSON space', async () => {
  const x = activations(64, 40, 3);
  const s = statistics(x, 64, 40);
  const a = await analyzeLayer(
    {
      name: 'l',
      data: weights(24, 40, 1),
      out: 24,
      in: 40,
      calibration: { meanAbs: s.meanAbs, rms: s.rms, gram: s.gram, tokens: 64 },
    },
    { method: 'l2qer', weightFormat: 'mxint4', factorFormat: 'mxint8', factorTiling: 'last-dim', maxRank: 12 },
  );
  const buf = encodeEntry(KEY, { note: 'x' }, a);
  const back = decodeEntry<{ note: string }>(buf, KEY);
  assert.deepEqual(back.value, a);
  assert.equal(back.meta.note, 'x');
  const v = back.value;
  assert.ok(v.sigmaPlain instanceof Float64Array);
  assert.ok(v.activation.meanAbs instanceof Float32Array);
  assert.ok(v.curves.outputErrSq instanceof Float64Array);
  // Binary floats: smaller than the same analysis as JSON numbers.
  const asJson = JSON.stringify(a, (_k, val: unknown) =>
    ArrayBuffer.isView(val) ? Array.from(val as Float64Array) : val,
  );
  assert.ok(buf.length < asJson.length, `${buf.length} bytes vs ${asJson.length} as JSON`);
});

test('non-finite numbers, −0, nulls and nested arrays survive; what JSON would change is refused', () => {
  const value = { a: NaN, b: Infinity, c: -Infinity, d: -0, e: null, f: [1, [2, new Float32Array([3])]], g: 'text' };
  const back = decodeEntry(encodeEntry(KEY, {}, value), KEY).value as typeof value;
  assert.ok(Number.isNaN(back.a));
  assert.equal(back.b, Infinity);
  assert.equal(back.c, -Infinity);
  assert.ok(Object.is(back.d, -0));
  assert.deepEqual(back.f, [1, [2, new Float32Array([3])]]);
  assert.throws(() => encodeEntry(KEY, {}, { m: new Map() }), /cannot store a Map at value\.m/);
  assert.throws(() => encodeEntry(KEY, {}, { f: () => 1 }), /cannot store function/);
  assert.throws(() => encodeEntry(KEY, {}, { $a: 1 }), /cannot store the key "\$a"/);
  assert.throws(() => encodeEntry(KEY, {}, { b: new BigInt64Array(1) }), /BigInt64Array/);
});

test('any damaged byte, a truncated file or an entry under the wrong key is detected', () => {
  const buf = encodeEntry(KEY, {}, { s: new Float64Array([1, 2, 3]), t: 'x' });
  for (let i = 0; i < buf.length; i += 7) {
    const bad = Buffer.from(buf);
    bad[i]! ^= 0x10;
    assert.throws(() => decodeEntry(bad, KEY), CorruptEntry, `byte ${i}`);
  }
  assert.throws(() => decodeEntry(buf.subarray(0, buf.length - 1), KEY), CorruptEntry);
  assert.throws(() => decodeEntry(buf.subarray(0, 20), KEY), /truncated/);
  assert.throws(() => decodeEntry(Buffer.alloc(0), KEY), /truncated/);
  assert.throws(() => decodeEntry(buf, 'cd'.repeat(32)), /holds ab/);
});
