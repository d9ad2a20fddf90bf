import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mseRows, outlierChannels, rangeRows, splitSummary, verdict } from '../../../webview/lib/reassemblyModel';
import type { ReassemblyResult } from '../../../src/shared/protocol/layer';

function result(patch: Partial<ReassemblyResult> = {}): ReassemblyResult {
  return {
    site: 'model.layers.0.self_attn.{q,k,v}_proj',
    consumers: ['q', 'k', 'v'],
    channels: 8,
    rows: 64,
    weightBits: 4,
    actBits: 4,
    channelRatio: 0.2,
    channelMax: Float32Array.from([1, 30, 1, 2, 1, 12, 1, 1]),
    threshold: 10,
    splits: [
      { channel: 1, parts: 3 },
      { channel: 5, parts: 2 },
    ],
    extraChannels: 3,
    merges: [{ src: 2, dst: 4 }],
    search: { theta: [10, 20], extraChannels: [3, 2], mse: [0.1, 0.2] },
    outputPower: 2,
    before: { range: { maxAbs: 30, meanTokenRange: 20 }, quantizedMse: 0.4, weightOnlyMse: 0.1 },
    after: {
      range: { maxAbs: 10, meanTokenRange: 8 },
      channelMax: new Float32Array(8),
      floatMse: 0.001,
      quantizedMse: 0.2,
      weightOnlyMse: 0.12,
    },
    l2qer: { rank: 32, factorFormat: 'mxint8', quantizedMse: 0.3, weightOnlyMse: 0.04 },
    reassembledL2qer: { quantizedMse: 0.1, weightOnlyMse: 0.05 },
    helps: true,
    notes: [],
    ...patch,
  };
}

test('outlier channels are those above θ, none without a θ', () => {
  assert.deepEqual(outlierChannels([1, 30, 1, 12, 10], 10), [1, 3]);
  assert.deepEqual(outlierChannels([1, 30], null), []);
});

test('the four variants are relative to the output power, L²QER beside reassembly, the lowest marked best', () => {
  const rows = mseRows(result());
  assert.deepEqual(
    rows.map((r) => r.id),
    ['none', 'reassembled', 'l2qer', 'both'],
  );
  assert.deepEqual(
    rows.map((r) => r.quantized),
    [0.2, 0.1, 0.15, 0.05],
  );
  assert.deepEqual(
    rows.map((r) => r.weightOnly),
    [0.05, 0.06, 0.02, 0.025],
  );
  assert.deepEqual(
    rows.map((r) => r.best),
    [false, false, false, true],
  );
  assert.equal(rows[2]!.label, 'L²QER rank 32 (A/B MXINT8)');
  const l2qerBest = mseRows(
    result({ l2qer: { rank: 16, factorFormat: 'mxint8', quantizedMse: 0.01, weightOnlyMse: 0 } }),
  );
  assert.deepEqual(
    l2qerBest.filter((r) => r.best).map((r) => r.id),
    ['l2qer'],
  );
});

test('the verdict says how much reassembly lowers the MSE, or that it does not help, or that there is nothing to do', () => {
  assert.equal(verdict(result()), "Helps: reassembly lowers the site's quantized output MSE by 50.0 %.");
  const worse = result({
    helps: false,
    after: { ...result().after, quantizedMse: 0.5 },
  });
  assert.match(verdict(worse), /^Does not help here: .* rises by 25\.0 %/);
  assert.match(verdict(result({ threshold: null, helps: false })), /nothing to reassemble/);
});

test('ranges before and after, and the largest splits first', () => {
  assert.deepEqual(
    rangeRows(result()).map((r) => [r.before, r.after]),
    [
      [30, 10],
      [20, 8],
    ],
  );
  assert.equal(splitSummary(result()), 'channel 1 ×3, channel 5 ×2');
  const many = result({ splits: Array.from({ length: 5 }, (_, i) => ({ channel: i, parts: 2 + (i % 2) })) });
  assert.equal(splitSummary(many, 2), 'channel 1 ×3, channel 3 ×3, … (5 channels)');
});
