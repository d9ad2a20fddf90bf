import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decimateMax, decimateMinMax } from '../../../webview/lib/decimate';

test('short series are kept whole, with x offset', () => {
  const p = decimateMinMax([3, 2, 1], 10, 1);
  assert.deepEqual(Array.from(p.x), [1, 2, 3]);
  assert.deepEqual(Array.from(p.y), [3, 2, 1]);
});

test('a long spectrum keeps its ends and its envelope within the point budget', () => {
  const n = 4096;
  const sigma = Float64Array.from({ length: n }, (_, i) => Math.exp(-i / 500));
  sigma[1234] = 5; // a spike must survive
  const p = decimateMinMax(sigma, 600);
  assert.ok(p.x.length <= 600, `${p.x.length} points`);
  assert.equal(p.x[0], 0);
  assert.equal(p.x[p.x.length - 1], n - 1);
  assert.ok(Array.from(p.y).includes(5));
  for (let i = 1; i < p.x.length; i++) assert.ok(p.x[i]! > p.x[i - 1]!, 'x strictly increasing');
  assert.ok(Math.max(...p.y) === 5 && Math.min(...p.y) === sigma[n - 1]);
});

test('max decimation keeps every outlier channel of a bucket', () => {
  const v = new Float64Array(10_000).fill(1);
  v[77] = 40;
  v[9_001] = 30;
  const p = decimateMax(v, 500);
  assert.equal(p.x.length, 500);
  assert.ok(Array.from(p.x).includes(77) && Array.from(p.x).includes(9_001));
});
