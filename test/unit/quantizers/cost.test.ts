import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  averageBitsPerStoredElement,
  bitsPerOriginalWeight,
  lowRankCost,
  parseFormat,
  withTile,
} from '../../../src/engine/quantizers';
import { isQuantLensError } from '../../../src/engine/errors';

const W = parseFormat('mxint4');
const AB = parseFormat('mxint8');
const cost = (nIn: number, nOut: number, rank: number) =>
  lowRankCost({ nIn, nOut, rank, weightFormat: W, factorFormat: AB });
/** Equal to `expected` as printed with `digits` decimals (half-way values either side allowed). */
const close = (actual: number, expected: number, digits = 3, what = ''): void =>
  assert.ok(Math.abs(actual - expected) <= 0.5 * 10 ** -digits + 1e-12, `${what} ${actual} vs ${expected}`);

test('bits per original weight: the docs/algorithms.md §2.2 table (MXINT4 W, MXINT8 A/B)', () => {
  const table: [string, number, number, number, number, number][] = [
    ['OPT-125M q/k/v/out', 768, 768, 5.208, 5.917, 8.33],
    ['OPT-125M fc1', 768, 3072, 4.943, 5.385, 5.21],
    ['OPT-1.3B q', 2048, 2048, 4.766, 5.031, 3.12],
    ['TinyLlama k/v (GQA)', 2048, 256, 5.695, 6.891, 14.06],
    ['TinyLlama mlp', 2048, 5632, 4.681, 4.862, 2.13],
    ['LLaMA-7B q', 4096, 4096, 4.633, 4.766, 1.56],
    ['LLaMA-7B mlp', 4096, 11008, 4.591, 4.682, 1.07],
  ];
  for (const [name, nIn, nOut, k32, k64, overheadPercent] of table) {
    close(cost(nIn, nOut, 32).bitsPerOriginalWeight, k32, 3, name);
    close(cost(nIn, nOut, 64).bitsPerOriginalWeight, k64, 3, name);
    close(cost(nIn, nOut, 32).parameterOverhead * 100, overheadPercent, 2, name);
    close(bitsPerOriginalWeight(4.5, 8.5, nIn, nOut, 32), k32, 3, name);
  }
});

test("the workbook's average over stored elements (xlsx model-profile)", () => {
  close(cost(4096, 4096, 32).averageBitsPerStoredElement, 4.562);
  close(cost(4096, 11008, 32).averageBitsPerStoredElement, 4.542);
  close(cost(768, 768, 32).averageBitsPerStoredElement, 4.808);
  close(cost(768, 3072, 32).averageBitsPerStoredElement, 4.698);
  close(cost(2048, 2048, 32).averageBitsPerStoredElement, 4.621);
  close(cost(2048, 8192, 32).averageBitsPerStoredElement, 4.577);
  close(averageBitsPerStoredElement(4.5, 8.5, 4096, 4096, 32), 4.562);
  // "4/8-bit exp" column: 4-bit shared exponents (4.25 / 8.25), final = (4·attn + 3·mlp)/7 with
  // the workbook's swapped columns (its "attn" uses hidden × intermediate). OPT-125M → 4.495.
  const narrow = (nIn: number, nOut: number) =>
    lowRankCost({
      nIn,
      nOut,
      rank: 32,
      weightFormat: parseFormat('mxint4:exp=4'),
      factorFormat: parseFormat('mxint8:exp=4'),
    }).averageBitsPerStoredElement;
  close((4 * narrow(768, 3072) + 3 * narrow(768, 768)) / 7, 4.495);
});

test('bytes and overhead ratio of LLaMA-7B q_proj at k = 32', () => {
  const c = cost(4096, 4096, 32);
  assert.equal(c.weight.totalBits, 4096 * 4096 * 4.5);
  assert.equal(c.factorA.totalBits + c.factorB.totalBits, 32 * 8192 * 8.5);
  assert.equal(c.totalBytes, (4096 * 4096 * 4.5 + 32 * 8192 * 8.5) / 8);
  close(c.overheadRatio, (32 * 8192 * 8.5) / (4096 * 4096 * 4.5), 6);
});

test('factor tiles follow the factor format; rank 0 costs nothing extra; bad sizes are rejected', () => {
  const down = lowRankCost({ nIn: 4096, nOut: 4096, rank: 32, weightFormat: W, factorFormat: withTile(AB, [16, 1]) });
  assert.equal(down.bitsPerOriginalWeight, cost(4096, 4096, 32).bitsPerOriginalWeight);
  // Rank 20 is ragged along k for [1,16] tiles (two exponents per row of A) but not for [16,1].
  assert.ok(
    cost(4096, 4096, 20).factorA.totalBits >
      lowRankCost({ nIn: 4096, nOut: 4096, rank: 20, weightFormat: W, factorFormat: withTile(AB, [16, 1]) }).factorA
        .totalBits,
  );
  const none = cost(1024, 1024, 0);
  assert.equal(none.bitsPerOriginalWeight, 4.5);
  assert.equal(none.overheadRatio, 0);
  assert.throws(
    () => cost(0, 16, 4),
    (e: unknown) => isQuantLensError(e) && e.code === 'bad-argument',
  );
  assert.throws(
    () => cost(16, 16, 1.5),
    (e: unknown) => isQuantLensError(e) && e.code === 'bad-argument',
  );
});
