import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeQuantize, parseFormat, withTile } from '../../../src/engine/quantizers';
import { normalMatrix } from './helpers';

const f32 = (values: number[]): Float32Array => new Float32Array(values);

test('asymmetric INT: Δ = (max−min)/(2^n−1), zero point, ties to even', () => {
  // INT2, one group: Δ = 3/3 = 1, z = round(1) = 1; 0.5/Δ = 0.5 rounds to 0 (even).
  const out = fakeQuantize(f32([-1, 0, 0.5, 2]), 1, 4, parseFormat('int2:g4'));
  assert.deepEqual([...out], [-1, 0, 0, 2]);
});

test('symmetric INT: Δ = max|x|/(2^(n−1)−1), ties to even', () => {
  const out = fakeQuantize(f32([-3, 1.5, 0.5, 2.5]), 1, 4, parseFormat('int3:g4:sym'));
  assert.deepEqual([...out], [-3, 2, 0, 2]);
});

test('constant and all-zero groups are reproduced exactly', () => {
  const x = f32([0.25, 0.25, 0.25, 0.25, 0, -0, 0, 0]);
  for (const text of ['int4:g4', 'int4:g4:sym']) {
    const out = fakeQuantize(x, 1, 8, parseFormat(text));
    assert.deepEqual([...out.slice(0, 4)], [0.25, 0.25, 0.25, 0.25], text);
    assert.ok(out.slice(4).every((v) => v === 0));
  }
});

test('outputs are on the group grid and within Δ/2 of the input', () => {
  const rows = 16;
  const cols = 300; // ragged: groups of 128, 128, 44
  const x = normalMatrix(rows * cols, 0.02, 5);
  for (let bits = 2; bits <= 8; bits++) {
    for (const symmetric of [false, true]) {
      const format = parseFormat(`int${bits}:g128${symmetric ? ':sym' : ''}`);
      const out = fakeQuantize(x, rows, cols, format);
      for (let r = 0; r < rows; r++) {
        for (let c0 = 0; c0 < cols; c0 += 128) {
          const c1 = Math.min(c0 + 128, cols);
          let lo = Infinity;
          let hi = -Infinity;
          for (let c = c0; c < c1; c++) {
            lo = Math.min(lo, x[r * cols + c]!);
            hi = Math.max(hi, x[r * cols + c]!);
          }
          const delta = symmetric
            ? Math.fround(Math.max(-lo, hi) / (2 ** (bits - 1) - 1))
            : Math.fround(Math.fround(hi - lo) / (2 ** bits - 1));
          for (let c = c0; c < c1; c++) {
            const i = r * cols + c;
            const steps = out[i]! / delta;
            assert.ok(Math.abs(steps - Math.round(steps)) < 1e-3, `grid ${format.kind}${bits}`);
            assert.ok(Math.abs(out[i]! - x[i]!) <= delta * (0.5 + 1e-5), `error ${bits} ${symmetric}`);
          }
        }
      }
      if (symmetric) {
        const negated = fakeQuantize(
          x.map((v) => -v),
          rows,
          cols,
          format,
        );
        assert.deepEqual(
          [...negated].map((v) => v + 0),
          [...out].map((v) => -v + 0),
          'sign symmetry',
        );
      }
    }
  }
});

test('groups along columns and per channel', () => {
  const x = normalMatrix(64 * 8, 1, 9);
  const perChannel = fakeQuantize(x, 64, 8, parseFormat('int8:channel'));
  assert.deepEqual(perChannel, fakeQuantize(x, 64, 8, parseFormat('int8:g8')));
  const down = fakeQuantize(x, 64, 8, withTile(parseFormat('int4'), [16, 1]));
  assert.equal(down.length, x.length);
});
