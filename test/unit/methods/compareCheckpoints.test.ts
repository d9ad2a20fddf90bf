import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareCheckpoints, pairLayers, unpermuteRope } from '../../../src/engine/methods/compareCheckpoints';
import { fakeQuantize, parseFormat } from '../../../src/engine/quantizers';
import { openCheckpoint } from '../../../src/engine/readers/open';
import type { LinearLayer } from '../../../src/engine/readers/checkpoint';
import { bf16Tensor, f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { weights } from './helpers';

const names = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((r) => `model.layers.0.self_attn.${r}.weight`);

test('synthetic pair: a rank-2 update, a 4-bit copy, a bf16 copy and an untouched layer get their verdicts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-compare-'));
  try {
    const n = 32;
    const w = names.map((_, i) => weights(n, n, 50 + i));
    const u = weights(n, 2, 9, 1);
    const v = weights(2, n, 10, 0.01);
    const lowRank = Float32Array.from(w[0]!, (x, i) => {
      const o = Math.floor(i / n);
      const c = i % n;
      return x + u[o * 2]! * v[c]! + u[o * 2 + 1]! * v[n + c]!;
    });
    const quantized = fakeQuantize(w[1]!, n, n, parseFormat('mxint4'));
    writeSafetensors(
      join(dir, 'a.safetensors'),
      names.map((name, i) => f32Tensor(name, [n, n], w[i]!)),
    );
    writeSafetensors(join(dir, 'b.safetensors'), [
      f32Tensor(names[0]!, [n, n], lowRank),
      f32Tensor(names[1]!, [n, n], quantized),
      bf16Tensor(names[2]!, [n, n], w[2]!),
      f32Tensor(names[3]!, [n, n], w[3]!),
    ]);
    const a = await openCheckpoint(join(dir, 'a.safetensors'));
    const b = await openCheckpoint(join(dir, 'b.safetensors'));
    const c = await compareCheckpoints(a, b);
    await a.close();
    await b.close();
    const by = new Map(c.layers.map((l) => [l.name, l]));
    const [q, k, vv, o] = names.map((x) => by.get(x)!);
    assert.equal(q!.verdict, 'changed');
    assert.equal(q!.rank90! <= 2, true, `a rank-2 update is rank ≤ 2 (got ${q!.rank90})`);
    assert.ok(q!.sigma[2]! < 1e-5 * q!.sigma[0]!);
    assert.equal(k!.verdict, 'changed');
    assert.ok(k!.relative > 0.02 && k!.relative < 0.2, `4-bit error ${k!.relative}`);
    assert.ok(k!.rank90! > 10, 'a quantization error is spread over the spectrum');
    assert.equal(vv!.verdict, 'unchanged', `bf16 rounding ${vv!.relative} is below the tolerance`);
    assert.equal(o!.verdict, 'identical');
    assert.equal(o!.diffNorm, 0);
    let sq = 0;
    for (const s of k!.sigma) sq += s * s;
    assert.ok(Math.abs(Math.sqrt(sq) - k!.diffNorm) < 1e-6 * k!.diffNorm, 'Σσ² = ‖ΔW‖²');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pairing: by name, else by block and role (Hugging Face ↔ GGUF names)', () => {
  const l = (name: string, block: number, role: string): LinearLayer => ({
    name,
    shape: [8, 8],
    storedTransposed: false,
    block,
    role,
    quantizedByDefault: true,
    dtype: 'F32',
    file: 'f',
  });
  const hf = [
    l('model.layers.0.self_attn.q_proj.weight', 0, 'q_proj'),
    l('model.layers.1.mlp.up_proj.weight', 1, 'up_proj'),
  ];
  const gg = [
    l('blk.0.attn_q.weight', 0, 'q_proj'),
    l('blk.1.ffn_up.weight', 1, 'up_proj'),
    l('blk.1.ffn_down.weight', 1, 'down_proj'),
  ];
  const p = pairLayers(hf, gg);
  assert.deepEqual(
    p.pairs.map(([x, y]) => [x.name, y.name]),
    [
      ['model.layers.0.self_attn.q_proj.weight', 'blk.0.attn_q.weight'],
      ['model.layers.1.mlp.up_proj.weight', 'blk.1.ffn_up.weight'],
    ],
  );
  assert.deepEqual(
    p.onlyInB.map((x) => x.name),
    ['blk.1.ffn_down.weight'],
  );
});

test("unpermuteRope inverts llama.cpp's q/k permutation", () => {
  const heads = 4;
  const d = 6;
  const nIn = 5;
  const out = heads * d;
  const w = weights(out, nIn, 3);
  // llama.cpp: w.reshape(heads, 2, d/2, in).swapaxes(1, 2).reshape(out, in)
  const permuted = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < d / 2; j++) {
      for (let i = 0; i < 2; i++) {
        const dst = h * d + j * 2 + i;
        const src = h * d + i * (d / 2) + j;
        permuted.set(w.subarray(src * nIn, (src + 1) * nIn), dst * nIn);
      }
    }
  }
  assert.deepEqual(unpermuteRope(permuted, out, nIn, heads), w);
  assert.equal(unpermuteRope(permuted, out, nIn, 5), null);
});
