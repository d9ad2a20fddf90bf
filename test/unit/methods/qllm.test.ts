import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  analyzeReassembly,
  disassembledChannels,
  reassembleAt,
  reassembledTensors,
  reassemblySites,
} from '../../../src/engine/methods/qllm';
import type { ReassemblySiteInput } from '../../../src/engine/methods/reassemblyTypes';
import type { LinearLayer } from '../../../src/engine/readers/checkpoint';
import { activations, weights } from './helpers';

function site(C: number, rows: number, outs: number[], seed: number): ReassemblySiteInput {
  return {
    site: 'test',
    consumers: outs.map((out, i) => ({ name: `c${i}`, weight: weights(out, C, seed + i, 0.1), out })),
    channels: C,
    samples: activations(rows, C, seed + 100),
    rows,
  };
}

function output(x: Float32Array, rows: number, cols: number, w: Float32Array, out: number): Float64Array {
  const y = new Float64Array(rows * out);
  for (let t = 0; t < rows; t++) {
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += x[t * cols + c]! * w[o * cols + c]!;
      y[t * out + o] = s;
    }
  }
  return y;
}

function channelMax(s: ReassemblySiteInput): Float32Array {
  const m = new Float32Array(s.channels);
  for (let t = 0; t < s.rows; t++) {
    for (let c = 0; c < s.channels; c++) m[c] = Math.max(m[c]!, Math.abs(s.samples[t * s.channels + c]!));
  }
  return m;
}

test('channel disassembly alone preserves the float output (x_c/T_c repeated T_c times, weights repeated)', () => {
  const s = site(20, 64, [12, 8], 1);
  const cm = channelMax(s);
  const theta = Math.max(...cm) / 5;
  const chans = disassembledChannels(cm, theta);
  const extra = chans.length - s.channels;
  assert.ok(extra > 0, 'some channels split');
  const re = reassembledTensors(s, chans);
  assert.equal(re.cols, chans.length);
  const W = new Float32Array([...s.consumers[0]!.weight, ...s.consumers[1]!.weight]);
  const y = output(s.samples, s.rows, s.channels, W, 20);
  const y2 = output(re.x, s.rows, re.cols, re.w, 20);
  let err = 0;
  let ref = 0;
  for (let i = 0; i < y.length; i++) {
    err = Math.max(err, Math.abs(y[i]! - y2[i]!));
    ref = Math.max(ref, Math.abs(y[i]!));
  }
  assert.ok(err <= 1e-5 * ref, `max deviation ${err} (ref ${ref})`);
  // Every split part's activation is within θ.
  for (let t = 0; t < s.rows; t++) {
    for (let j = 0; j < re.cols; j++) assert.ok(Math.abs(re.x[t * re.cols + j]!) <= theta * (1 + 1e-6));
  }
});

/** QLLM's score for channel columns a ∈ A (even), b ∈ B (odd), as coded, computed directly. */
function codedScore(s: ReassemblySiteInput, list: { c: number; scale: number }[], i: number, j: number): number {
  const a = list[2 * i]!;
  const b = list[2 * j + 1]!;
  let d = 0;
  for (let t = 0; t < s.rows; t++) {
    const v = s.samples[t * s.channels + a.c]! * a.scale - s.samples[t * s.channels + b.c]! * b.scale;
    d += v * v;
  }
  d = Math.sqrt(d);
  const colSum = (c: number) => {
    let sum = 0;
    for (const k of s.consumers) for (let o = 0; o < k.out; o++) sum += k.weight[o * s.channels + c]!;
    return sum;
  };
  const nB = Math.floor(list.length / 2);
  return ((i < nB ? colSum(a.c) * d : 0) + colSum(b.c) * d) ** 2;
}

test('assembly as coded: best-score merges of unsplit channels, activation mean and weight sum, back to C channels', async () => {
  const s = site(30, 40, [6], 7);
  const cm = channelMax(s);
  // Split the outlier channels into a few parts, within QLLM's budget of 0.2·C extra channels.
  const theta = (Math.max(...cm) / 3) * 1.001;
  const r = await reassembleAt(s, theta);
  assert.equal(r.cols, s.channels, 'assembly merges exactly the added channels');
  // Rebuild the disassembled list and check every merge against a brute-force argmin of the coded score.
  const list: { c: number; scale: number; split: boolean }[] = [];
  for (let c = 0; c < s.channels; c++) {
    const T = Math.max(1, Math.ceil(cm[c]! / theta));
    for (let k = 0; k < T; k++) list.push({ c, scale: 1 / T, split: T > 1 });
  }
  const nA = Math.ceil(list.length / 2);
  const nB = Math.floor(list.length / 2);
  const best: { i: number; j: number; score: number }[] = [];
  for (let i = 0; i < nA; i++) {
    let m = Infinity;
    let mj = 0;
    for (let j = 0; j < nB; j++) {
      const sc = list[2 * i]!.split || list[2 * j + 1]!.split ? Number.MAX_VALUE : codedScore(s, list, i, j);
      if (sc < m) {
        m = sc;
        mj = j;
      }
    }
    best.push({ i, j: mj, score: m });
  }
  best.sort((p, q) => p.score - q.score || p.i - q.i);
  const extra = list.length - s.channels;
  assert.ok(extra > 0 && extra <= 6, `extra channels ${extra}`);
  const expected = best.slice(0, extra).map((e) => ({ src: list[2 * e.i]!.c, dst: list[2 * e.j + 1]!.c }));
  assert.deepEqual(r.merges, expected);
  for (const m of r.merges) {
    assert.ok(!list.some((l) => l.split && (l.c === m.src || l.c === m.dst)), 'split channels never merge');
    // The merged channel: activation (x_b + x_a)/2, weight W_b + W_a.
    const ch = r.channels.find((c) => c.members.includes(m.src))!;
    assert.ok(ch.members.includes(m.dst));
    assert.deepEqual(
      ch.alpha,
      ch.members.map(() => 1 / ch.members.length),
    );
  }
  const j = r.channels.findIndex((c) => c.members.length === 2);
  const [a, b] = r.channels[j]!.members as [number, number];
  for (let o = 0; o < 6; o++) {
    const w = s.consumers[0]!.weight;
    assert.ok(Math.abs(r.w[o * r.cols + j]! - (w[o * 30 + a]! + w[o * 30 + b]!)) < 1e-6);
  }
  for (let t = 0; t < s.rows; t++) {
    const want = (s.samples[t * 30 + a]! + s.samples[t * 30 + b]!) / 2;
    assert.ok(Math.abs(r.x[t * r.cols + j]! - want) < 1e-6);
  }
});

test('the θ search stays within the channel budget, picks its lowest MSE, and shrinks the activation range', async () => {
  const s = site(48, 256, [32], 3);
  const r = await analyzeReassembly(s, { weightBits: 4, actBits: 4, rank: 4, channelRatio: 0.2 });
  assert.ok(r.search.mse.length > 0);
  assert.ok(Math.max(...r.search.extraChannels) <= Math.floor(0.2 * 48));
  const best = r.search.mse.indexOf(Math.min(...r.search.mse));
  assert.equal(r.threshold, r.search.theta[best]);
  assert.equal(r.after.channelMax.length, 48, 'back to C channels');
  assert.ok(r.after.range.maxAbs < r.before.range.maxAbs, 'outliers are split');
  assert.ok(r.after.quantizedMse < r.before.quantizedMse, 'reassembly helps W4A4 on outlier channels');
  assert.ok(r.l2qer.weightOnlyMse < r.before.weightOnlyMse, 'L²QER reduces the weight-only error');
  assert.ok(r.notes[0]!.includes('out of scope'));
});

test('reassembly sites: q/k/v and gate/up share an input by name, ONNX layers by their activation', () => {
  const l = (name: string, shape: [number, number], onnx?: string): LinearLayer => ({
    name,
    shape,
    storedTransposed: false,
    block: 0,
    role: 'x',
    quantizedByDefault: true,
    dtype: 'F32',
    file: 'f',
    ...(onnx
      ? { onnx: { node: 'n', op: 'MatMul', activationInput: onnx, weightInput: name, weightSource: 'constant' } }
      : {}),
  });
  const sites = reassemblySites([
    l('model.layers.0.self_attn.q_proj.weight', [64, 64]),
    l('model.layers.0.self_attn.k_proj.weight', [32, 64]),
    l('model.layers.0.self_attn.v_proj.weight', [32, 64]),
    l('model.layers.0.self_attn.o_proj.weight', [64, 64]),
    l('model.layers.0.mlp.gate_proj.weight', [128, 64]),
    l('model.layers.0.mlp.up_proj.weight', [128, 64]),
    l('model.layers.0.mlp.down_proj.weight', [64, 128]),
    l('a.w_0', [8, 4], 'x1'),
    l('b.w_0', [8, 4], 'x1'),
  ]);
  assert.deepEqual(
    sites.map((s) => s.layers.length),
    [3, 1, 2, 1, 2],
  );
  assert.equal(sites[0]!.site, 'model.layers.0.self_attn.{q,k,v}_proj.weight');
  assert.equal(sites[4]!.site, 'x1');
});
