import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliScript } from '../../helpers/workerBundle';
import { PYTHON, pythonMissing, runPythonJson } from '../../helpers/python';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { exactInBf16, exactInF16, narrowestExact } from '../../../src/engine/export/storage';

const TINY_LLAMA = join(import.meta.dirname, '../../fixtures/models/tiny-llama');
const MODEL = join(TINY_LLAMA, 'model.safetensors');
const BLOCK_LAYERS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [cliScript(), ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function layerName(block: number, role: string): string {
  return `model.layers.${block}.${role.endsWith('_proj') && ['gate_proj', 'up_proj', 'down_proj'].includes(role) ? 'mlp' : 'self_attn'}.${role}.weight`;
}

/** A recipe with every kind of W_q storage (MX → BF16, INT/NVFP4/FP8 → F32) and five different ranks, 0 included. */
function mixedRecipe(dir: string): string {
  const formats = ['mxint4', 'int4:g32', 'nvfp4', 'mxint3', 'fp8', 'int8:channel:sym', 'mxfp4'];
  const ranks = [16, 4, 0, 8, 32];
  const layers: Record<string, { format: string; rank: number }> = {};
  let i = 0;
  for (let b = 0; b < 4; b++)
    for (const role of BLOCK_LAYERS) {
      layers[layerName(b, role)] = { format: formats[i % formats.length]!, rank: ranks[i % ranks.length]! };
      i++;
    }
  const path = join(dir, 'recipe.json');
  writeFileSync(path, JSON.stringify({ kind: 'quant-lens-recipe', version: 1, method: 'lqer', layers }));
  return path;
}

test('narrowestExact: MX values are BF16, F16-only values F16, others F32', () => {
  assert.equal(narrowestExact(Float32Array.of(0.75, -3, 2 ** -20, 0)), 'BF16');
  assert.equal(narrowestExact(Float32Array.of(1 + 2 ** -9, 0.5)), 'F16', '10 mantissa bits fit F16, not BF16');
  assert.equal(narrowestExact(Float32Array.of(0.1)), 'F32');
  assert.ok(exactInBf16(Float32Array.of(NaN, Infinity, -0)));
  assert.equal(exactInF16(Float32Array.of(1e-8)), false, 'F16 flushes 1e-8 to zero');
  assert.equal(exactInF16(Float32Array.of(70000)), false, 'beyond F16 range');
});

test('export --to hf: shards with an index, copied config, W_q under the source names, PEFT adapter tensors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-hf-'));
  const recipe = mixedRecipe(dir);
  const out = join(dir, 'hf');
  const ql = join(dir, 'ql.safetensors');
  const r = cli(['export', MODEL, '--to', 'hf', '--recipe', recipe, '--shard-size', '600KB', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /narrowest dtype holding it exactly: \d+ as BF16, \d+ as F32/);
  assert.equal(cli(['export', MODEL, '--recipe', recipe, '--out', ql]).code, 0);

  const files = readdirSync(out).sort();
  const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
  assert.ok(shards.length > 1, `sharded: ${files.join(', ')}`);
  assert.ok(shards.every((f) => f.endsWith(`-of-${String(shards.length).padStart(5, '0')}.safetensors`)));
  for (const copied of ['config.json', 'tokenizer.json']) {
    assert.deepEqual(readFileSync(join(out, copied)), readFileSync(join(TINY_LLAMA, copied)), `${copied} copied`);
  }
  assert.ok(!files.includes('model.onnx') && !files.includes('model.safetensors'), 'no source weights copied');
  const index = JSON.parse(readFileSync(join(out, 'model.safetensors.index.json'), 'utf8')) as {
    metadata: { total_size: number };
    weight_map: Record<string, string>;
  };

  const src = await openCheckpoint(MODEL);
  const hf = await openCheckpoint(join(out, 'model.safetensors.index.json'));
  const q = await openCheckpoint(ql);
  const adapter = await openCheckpoint(join(out, 'adapter', 'adapter_model.safetensors'));
  try {
    assert.deepEqual(Object.keys(index.weight_map).sort(), src.tensors.map((t) => t.name).sort(), 'same tensor names');
    assert.equal(
      index.metadata.total_size,
      hf.tensors.reduce((s, t) => s + t.byteLength, 0),
    );
    const config = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8')) as {
      peft_type: string;
      r: number;
      lora_alpha: number;
      target_modules: string[];
      rank_pattern: Record<string, number>;
      alpha_pattern: Record<string, number>;
    };
    assert.equal(config.peft_type, 'LORA');
    const recipeLayers = (
      JSON.parse(readFileSync(recipe, 'utf8')) as { layers: Record<string, { rank: number; format: string }> }
    ).layers;
    const corrected = Object.entries(recipeLayers).filter(([, v]) => v.rank > 0);
    assert.deepEqual(
      [...config.target_modules].sort(),
      corrected.map(([n]) => n.replace(/\.weight$/, '')).sort(),
      'every corrected layer and only those',
    );
    for (const [name, { rank, format }] of Object.entries(recipeLayers)) {
      const module = name.replace(/\.weight$/, '');
      const wq = await hf.readTensor(name);
      assert.deepEqual(wq, await q.readTensor(name), `${name}: W_q equals the quant-lens export's`);
      const dtype = hf.tensors.find((t) => t.name === name)!.dtype;
      assert.equal(dtype, /^mx/.test(format) ? 'BF16' : 'F32', `${name} (${format}) stored as ${dtype}`);
      if (rank === 0) continue;
      assert.equal(config.rank_pattern[module] ?? config.r, rank);
      assert.equal(config.alpha_pattern[module] ?? config.lora_alpha, rank, 'scaling lora_alpha / r = 1');
      const info = (t: string) => adapter.tensors.find((x) => x.name === `base_model.model.${module}.${t}.weight`)!;
      const [out, nIn] = src.linearLayers.find((l) => l.name === name)!.shape;
      assert.deepEqual(info('lora_A').shape, [rank, nIn]);
      assert.deepEqual(info('lora_B').shape, [out, rank]);
      // lora_A = Aᵀ, lora_B = Bᵀ of the quant-lens factors A [in, k], B [k, out].
      const A = await q.readTensor(`${name}.lqer_A`);
      const B = await q.readTensor(`${name}.lqer_B`);
      const la = await adapter.readTensor(info('lora_A').name);
      const lb = await adapter.readTensor(info('lora_B').name);
      for (let i = 0; i < nIn; i += 17) for (let j = 0; j < rank; j++) assert.equal(la[j * nIn + i], A[i * rank + j]);
      for (let o = 0; o < out; o += 13) for (let j = 0; j < rank; j++) assert.equal(lb[o * rank + j], B[j * out + o]);
    }
  } finally {
    await Promise.all([src.close(), hf.close(), q.close(), adapter.close()]);
  }
});

test('export --to hf refuses an ONNX checkpoint and an existing folder without --force, leaving nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-hf-bad-'));
  const onnx = cli(['export', join(TINY_LLAMA, 'model.onnx'), '--to', 'hf', '--out', join(dir, 'x')]);
  assert.equal(onnx.code, 2);
  assert.match(
    onnx.stderr,
    /Hugging Face checkpoint \+ PEFT adapter export cannot express this:\n {2}a onnx checkpoint/,
  );
  assert.equal(existsSync(join(dir, 'x')), false);
  const out = join(dir, 'hf');
  assert.equal(cli(['export', MODEL, '--to', 'hf', '--rank', '4', '--out', out]).code, 0);
  const again = cli(['export', MODEL, '--to', 'hf', '--rank', '4', '--out', out]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /not empty; pass --force/);
  assert.equal(cli(['export', MODEL, '--to', 'hf', '--rank', '4', '--out', out, '--force']).code, 0);
  assert.deepEqual(readdirSync(dir).sort(), ['hf'], 'no temporary folder left beside it');
});

interface PeftCheck {
  wq_bitwise_equal: boolean;
  quantized_layers: number;
  max_abs_logit_diff: number;
  merged_max_abs: number;
  without_adapter_max_abs: number;
  logit_scale: number;
}

test(
  'transformers + PEFT load the hf export and give the logits of the model with Ŵ (uniform, mixed sharded recipe, GPT-2 Conv1D)',
  { skip: pythonMissing(['torch', 'transformers', 'peft', 'safetensors']) ?? false },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'ql-hf-py-'));
    // GPT-2 stores its linears as Conv1D [in, out]: its adapter needs fan_in_fan_out.
    const gpt2 = join(dir, 'gpt2');
    const made = spawnSync(
      PYTHON,
      [
        '-c',
        'import sys, torch; from transformers import GPT2Config, GPT2LMHeadModel; torch.manual_seed(0); ' +
          'GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=300, n_positions=64)).save_pretrained(sys.argv[1])',
        gpt2,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(made.status, 0, made.stderr);
    const cases = [
      {
        label: 'tiny Llama, uniform MXINT4, LQER rank 8',
        source: TINY_LLAMA,
        model: MODEL,
        layers: 28,
        how: ['--format', 'mxint4', '--method', 'lqer', '--rank', '8'],
      },
      {
        label: 'tiny Llama, mixed recipe (MXINT4/3, INT4 g32, INT8, NVFP4, FP8, MXFP4; ranks 0–32), 600 KB shards',
        source: TINY_LLAMA,
        model: MODEL,
        layers: 28,
        how: ['--recipe', mixedRecipe(dir), '--shard-size', '600KB'],
      },
      { label: 'GPT-2 (Conv1D), rank 8', source: gpt2, model: gpt2, layers: 8, how: ['--rank', '8'] },
    ];
    const results = cases.map((c, i) => {
      const hf = join(dir, `hf${i}`);
      const ql = join(dir, `ql${i}.safetensors`);
      for (const [target, out] of [
        ['hf', hf],
        ['quant-lens', ql],
      ] as const) {
        const r = cli(['export', c.model, '--to', target, ...c.how, '--out', out]);
        assert.equal(r.code, 0, r.stderr);
      }
      const config = JSON.parse(readFileSync(join(hf, 'adapter', 'adapter_config.json'), 'utf8')) as {
        fan_in_fan_out: boolean;
      };
      assert.equal(config.fan_in_fan_out, c.source === gpt2);
      return { c, hf, ql };
    });
    const bySource = (source: string) => results.filter((r) => r.c.source === source);
    const checks = [TINY_LLAMA, gpt2].flatMap((source) => {
      const rs = bySource(source);
      const got = runPythonJson<PeftCheck[]>('check_hf_export.py', [
        '--source',
        source,
        ...rs.flatMap((r) => ['--pair', r.hf, r.ql]),
      ]);
      return rs.map((r, i) => ({ c: r.c, got: got[i]! }));
    });
    for (const { c, got } of checks) {
      process.stderr.write(`  ${c.label}: ${JSON.stringify(got)}\n`);
      assert.equal(got.quantized_layers, c.layers);
      assert.ok(got.wq_bitwise_equal, `${c.label}: transformers loads W_q bit for bit`);
      const tol = 1e-5 * Math.max(1, got.logit_scale);
      assert.ok(got.max_abs_logit_diff <= tol, `${c.label}: base + adapter vs Ŵ: ${got.max_abs_logit_diff} > ${tol}`);
      assert.ok(got.merged_max_abs <= tol, `${c.label}: merged: ${got.merged_max_abs}`);
      assert.ok(got.without_adapter_max_abs > 100 * tol, `${c.label}: the adapter changes the logits (control)`);
    }
  },
);

test('an hf export interrupted by a signal leaves no folder behind, or the complete one', async () => {
  const { spawn } = await import('node:child_process');
  const base = mkdtempSync(join(tmpdir(), 'ql-hf-signal-'));
  const args = (out: string) => [
    cliScript(),
    'export',
    MODEL,
    '--to',
    'hf',
    '--rank',
    '16',
    '--shard-size',
    '300KB',
    '--out',
    out,
  ];
  const timed = (out: string, signal: NodeJS.Signals | null, atMs: number) =>
    new Promise<{ code: number | null; ms: number }>((resolve, reject) => {
      const t0 = Date.now();
      const child = spawn(process.execPath, args(out), { stdio: 'ignore' });
      const timer = signal && setTimeout(() => child.kill(signal), atMs);
      child.on('error', reject);
      child.on('exit', (code) => {
        if (timer) clearTimeout(timer);
        resolve({ code, ms: Date.now() - t0 });
      });
    });
  const full = await timed(join(base, 'full'), null, 0);
  assert.equal(full.code, 0);
  const complete = readdirSync(join(base, 'full')).sort();
  let interrupted = 0;
  for (let i = 0; i < 6; i++) {
    const out = join(base, `run-${i}`);
    const r = await timed(out, i % 2 ? 'SIGTERM' : 'SIGINT', Math.round(((i + 1) / 7) * full.ms));
    const left = readdirSync(base).filter((f) => f.startsWith(`run-${i}`) || f.startsWith(`.run-${i}`));
    if (r.code === 0 || (existsSync(out) && readdirSync(out).sort().join() === complete.join())) {
      assert.deepEqual(readdirSync(out).sort(), complete, `run ${i}: a complete export`);
    } else {
      interrupted++;
      assert.deepEqual(left, [], `run ${i} (exit ${r.code}): nothing left, no temporary folder`);
    }
  }
  assert.ok(interrupted >= 2, `${interrupted} runs were interrupted before the end`);
});
