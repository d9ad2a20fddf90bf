import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliScript } from '../../helpers/workerBundle';
import { bf16Tensor, f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { ActivationAccumulator } from '../../../src/engine/calibration/accumulator';
import { writeStatsFile } from '../../../src/engine/calibration/statsFile';
import { rng } from '../methods/helpers';
import { scratchOutput } from '../../helpers/output';

function run(args: string[]) {
  const r = spawnSync(process.execPath, [cliScript(), ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A two-layer Llama-named checkpoint in BF16, with config.json, and a stats file for it. */
function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'ql-cli-'));
  const r = rng(11);
  const q = Array.from({ length: 48 * 32 }, () => r() * 0.1);
  const up = Array.from({ length: 64 * 32 }, () => r() * 0.1);
  writeSafetensors(join(dir, 'model.safetensors'), [
    bf16Tensor(
      'model.embed_tokens.weight',
      [10, 32],
      Array.from({ length: 320 }, () => r()),
    ),
    bf16Tensor('model.layers.0.self_attn.q_proj.weight', [48, 32], q),
    bf16Tensor('model.layers.0.mlp.up_proj.weight', [64, 32], up),
    f32Tensor('model.norm.weight', [32], new Array(32).fill(1)),
  ]);
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 32 }),
  );
  return { dir, ckpt: join(dir, 'model.safetensors') };
}

async function statsFor(dir: string) {
  const r = rng(5);
  const stats = new Map();
  for (const name of ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.mlp.up_proj.weight']) {
    const acc = new ActivationAccumulator(32, { gram: true });
    for (let b = 0; b < 4; b++)
      acc.addBatch(
        Float32Array.from({ length: 16 * 32 }, (_, i) => r() * (i % 32 === 3 ? 20 : 1)),
        16,
      );
    stats.set(name, acc.finish());
  }
  const path = join(dir, 'stats.safetensors');
  await writeStatsFile(await scratchOutput(path), stats);
  return path;
}

test('inspect --json gives one record per layer with the documented fields', async () => {
  const { dir, ckpt } = fixture();
  const calib = await statsFor(dir);
  const r = run(['inspect', ckpt, '--json', '--rank', '8', '--calib', calib]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    lines.map((l) => l.name),
    ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.mlp.up_proj.weight'],
  );
  for (const l of lines) {
    for (const key of [
      'name',
      'shape',
      'format',
      'bitsPerWeight',
      'method',
      'rank',
      'sigmaPlain',
      'sigmaScaled',
      'weightError',
      'outputError',
      'timeMs',
      'stageMs',
      'spectrumRoutes',
    ]) {
      assert.ok(key in l, `record has ${key}`);
    }
    // Layers this small take the float64 route whatever their spectra look like.
    assert.deepEqual(l.spectrumRoutes, { plain: 'float64/float64', scaled: 'float64/float64' });
    assert.equal(l.method, 'l2qer', 'L²QER is the default with calibration');
    assert.equal(l.sigmaPlain.length, 32);
    assert.equal(l.outputErrorKind, 'exact');
    assert.ok(l.weightError > 0 && l.weightError < l.weightErrorByRank[0]);
  }
  assert.deepEqual(lines[0].shape, [48, 32]);
});

test('export writes W_q, lqer_A and lqer_B whose product reproduces the error inspect reports', async () => {
  const { dir, ckpt } = fixture();
  const out = join(dir, 'q.safetensors');
  const r = run(['export', ckpt, '--out', out, '--rank', '8', '--dtype', 'bf16']);
  assert.equal(r.code, 0, r.stderr);
  const inspect = run(['inspect', ckpt, '--json', '--rank', '8', '--no-spectra']);
  const expected = new Map(
    inspect.stdout
      .trim()
      .split('\n')
      .map((l) => {
        const j = JSON.parse(l);
        return [j.name, j.weightError];
      }),
  );
  const src = await openCheckpoint(ckpt);
  const q = await openCheckpoint(out);
  try {
    assert.deepEqual(q.tensors.map((t) => t.name).sort(), [
      'model.embed_tokens.weight',
      'model.layers.0.mlp.up_proj.weight',
      'model.layers.0.mlp.up_proj.weight.lqer_A',
      'model.layers.0.mlp.up_proj.weight.lqer_B',
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.0.self_attn.q_proj.weight.lqer_A',
      'model.layers.0.self_attn.q_proj.weight.lqer_B',
      'model.norm.weight',
    ]);
    assert.deepEqual(
      await q.readTensor('model.embed_tokens.weight'),
      await src.readTensor('model.embed_tokens.weight'),
      'copied unchanged',
    );
    for (const name of ['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.mlp.up_proj.weight']) {
      const W = await src.readTensor(name);
      const Wq = await q.readTensor(name);
      const A = await q.readTensor(`${name}.lqer_A`);
      const B = await q.readTensor(`${name}.lqer_B`);
      const [out, nIn] = q.tensors.find((t) => t.name === name)!.shape as [number, number];
      let err = 0;
      let norm = 0;
      for (let o = 0; o < out; o++)
        for (let i = 0; i < nIn; i++) {
          let ab = 0;
          for (let j = 0; j < 8; j++) ab += A[i * 8 + j]! * B[j * out + o]!;
          err += (W[o * nIn + i]! - Wq[o * nIn + i]! - ab) ** 2;
          norm += W[o * nIn + i]! ** 2;
        }
      const rel = Math.sqrt(err / norm);
      assert.ok(
        Math.abs(rel - expected.get(name)!) < 1e-4,
        `${name}: exported ${rel} vs inspected ${expected.get(name)}`,
      );
    }
    const meta = JSON.parse(q.metadata.quant_lens!);
    assert.equal(meta.rank, 8);
    assert.equal(meta.layers['model.layers.0.mlp.up_proj.weight'].format, 'mxint4');
  } finally {
    await src.close();
    await q.close();
  }
});

test('bad input exits with code 2 and a message naming the file and the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-cli-bad-'));
  const bad = join(dir, 'broken.safetensors');
  writeFileSync(bad, Buffer.from([1, 2, 3]));
  const r = run(['inspect', bad]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /broken\.safetensors/);
  assert.match(r.stderr, /truncated|too short/);
  const m = run(['inspect', fixture().ckpt, '--method', 'l2qer']);
  assert.equal(m.code, 2);
  assert.match(m.stderr, /needs act_mean_abs/);
  const f = run(['inspect', fixture().ckpt, '--format', 'mxint99']);
  assert.equal(f.code, 2);
  assert.equal(run(['frobnicate']).code, 2);
});
