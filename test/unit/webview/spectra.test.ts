import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cumulativeEnergy,
  median,
  normalizeSpectrum,
  outlierChannels,
  recoveredCurve,
  relativeToMedian,
} from '../../../webview/lib/spectra';

const close = (a: number, b: number) => Math.abs(a - b) < 1e-12;

test("normalised spectra have unit Frobenius norm, as in the paper's figure", () => {
  const n = normalizeSpectrum([3, 4]);
  assert.ok(close(n[0]!, 0.6) && close(n[1]!, 0.8));
  assert.deepEqual(Array.from(normalizeSpectrum([0, 0])), [0, 0]);
});

test('cumulative energy runs from 0 at k = 0 to 1 at full rank', () => {
  const c = cumulativeEnergy([2, 1, 1]);
  assert.deepEqual(Array.from(c), [0, 4 / 6, 5 / 6, 1]);
});

test('recovered share from the error curve', () => {
  assert.deepEqual(Array.from(recoveredCurve([4, 1, 0])), [0, 0.75, 1]);
  assert.deepEqual(Array.from(recoveredCurve([0, 0])), [0, 0]);
});

test('outlier channels relative to the median', () => {
  const v = [1, 1, 1, 1, 50, 1, 8, 1];
  assert.equal(median(v), 1);
  assert.deepEqual(Array.from(relativeToMedian([2, 4, 6])), [0.5, 1, 1.5]);
  const { outliers, count } = outlierChannels(v, 5);
  assert.equal(count, 2);
  assert.deepEqual(
    outliers.map((o) => o.channel),
    [4, 6],
  );
});
