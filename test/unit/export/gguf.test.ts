/**
 * GGUF export of the repository's tiny Llama, read back with gguf-py (test/unit/export/
 * gguf_readback.py): every weight's dequantization equals Quant Lens's W_q bit for bit, W_q + the
 * adapter applied as llama.cpp's loader applies it equals Ŵ, the q/k rows follow the converter's
 * own permutation, and the keys llama.cpp reads are there. Needs Python with gguf, numpy and
 * safetensors; without them these tests are skipped with a message (CI installs them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { runExport } from '../../../src/engine/export/targets';
import { parseRecipe } from '../../../src/engine/methods/recipe';
import { reconstructLayer } from '../../../src/engine/methods/reconstruct';
import { llamaGgufName, permuteHeadRows } from '../../../src/engine/export/llamaGguf';
import type { Checkpoint } from '../../../src/engine/readers/checkpoint';

const MODEL = join(import.meta.dirname, '..', '..', 'fixtures', 'models', 'tiny-llama', 'model.safetensors');
const READBACK = join(import.meta.dirname, 'gguf_readback.py');
const HEADS = 4;
const KV_HEADS = 2;

const python = spawnSync('python3', ['-c', 'import gguf, numpy, safetensors'], { encoding: 'utf8' });
const noPython =
  python.status === 0
    ? false
    : `needs python3 with gguf, numpy and safetensors (pip install gguf numpy safetensors): ${(python.stderr || String(python.error)).trim().split('\n').pop()}`;
if (noPython) console.warn(`SKIPPED gguf read-back tests: ${noPython}`);

const SETTINGS = { method: 'lqer', weightFormat: 'q4_k', factorFormat: 'mxint8', factorTiling: 'last-dim' } as const;

interface Readback {
  get(name: string): Promise<Float32Array>;
  meta: {
    model: Record<string, unknown>;
    types: Record<string, string>;
    dims: Record<string, number[]>;
    lora?: Record<string, unknown>;
    lora_types?: Record<string, string>;
    lora_dims?: Record<string, number[]>;
  };
  close(): Promise<void>;
}

async function exportAndRead(
  ckpt: Checkpoint,
  options: { rank: number; recipe?: Record<string, { format: string; rank: number }> },
): Promise<Readback> {
  const dir = mkdtempSync(join(tmpdir(), 'ql-gguf-'));
  const out = join(dir, 'export');
  const recipe = options.recipe
    ? parseRecipe(JSON.stringify({ kind: 'quant-lens-recipe', version: 1, layers: options.recipe }))
    : null;
  await runExport(
    'gguf',
    {
      checkpoint: ckpt,
      layers: ckpt.linearLayers.filter((l) => l.quantizedByDefault),
      settings: SETTINGS,
      rank: options.rank,
      recipe,
    },
    { out },
  );
  const dest = join(dir, 'readback.safetensors');
  const r = spawnSync('python3', [READBACK, out, dest, MODEL], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const back = await openCheckpoint(dest);
  return {
    get: (name) => back.readTensor(name),
    meta: JSON.parse(back.metadata.readback ?? '{}') as Readback['meta'],
    close: () => back.close(),
  };
}

function headsOf(name: string): number | null {
  return /q_proj/.test(name) ? HEADS : /k_proj/.test(name) ? KV_HEADS : null;
}

/** Quant Lens's W_q and Ŵ of a layer, in the GGUF row order. */
async function expected(ckpt: Checkpoint, name: string, format: string, rank: number) {
  const w = await ckpt.readWeight(name);
  const r = await reconstructLayer(
    { name, data: w.data, out: w.out, in: w.in },
    { ...SETTINGS, weightFormat: format },
    rank,
  );
  const h = headsOf(name);
  const order = (a: Float32Array) => (h === null ? a : permuteHeadRows(a, w.out, h));
  return { wq: order(r.wq), what: order(r.weight), rank: r.rank, w: order(w.data) };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test(
  'GGUF + LoRA of the tiny Llama at q4_k, LQER rank 8: gguf-py reads W_q bit for bit and recomposes Ŵ',
  { skip: noPython },
  async () => {
    const ckpt = await openCheckpoint(MODEL);
    const back = await exportAndRead(ckpt, { rank: 8 });
    try {
      const m = back.meta;
      assert.equal(m.model['general.architecture'], 'llama');
      assert.equal(m.model['llama.block_count'], 4);
      assert.equal(m.model['llama.embedding_length'], 128);
      assert.equal(m.model['llama.attention.head_count'], HEADS);
      assert.equal(m.model['llama.attention.head_count_kv'], KV_HEADS);
      assert.equal(m.model['llama.feed_forward_length'], 256);
      assert.equal(m.model['tokenizer.ggml.model'], 'gpt2');
      assert.deepEqual((m.model['tokenizer.ggml.tokens'] as { length: number }).length, 512);
      assert.equal(m.lora?.['general.type'], 'adapter');
      assert.equal(m.lora?.['adapter.type'], 'lora');
      assert.equal(m.lora?.['adapter.lora.alpha'], 8);
      // 128-wide rows fall back from Q4_K to Q5_0, as llama-quantize does; 256-wide ones stay Q4_K.
      assert.equal(m.types['blk.0.attn_q.weight'], 'Q5_0');
      assert.equal(m.types['blk.0.ffn_down.weight'], 'Q4_K');
      assert.equal(m.types['blk.0.attn_norm.weight'], 'F32');
      assert.equal(m.types['token_embd.weight'], 'F32');
      let layers = 0;
      for (const l of ckpt.linearLayers.filter((x) => x.quantizedByDefault)) {
        const g = llamaGgufName(l.name)!;
        const e = await expected(ckpt, l.name, 'q4_k', 8);
        assert.deepEqual(await back.get(`wq/${g}`), e.wq, `${g}: gguf-py's dequantization is not Quant Lens's W_q`);
        // The converter's own permutation of the source weight equals ours.
        assert.deepEqual(await back.get(`hf/${g}`), e.w, `${g}: rows not in convert_hf_to_gguf's order`);
        assert.deepEqual(m.lora_dims?.[`${g}.lora_a`], [l.shape[1], 8]);
        assert.deepEqual(m.lora_dims?.[`${g}.lora_b`], [8, l.shape[0]]);
        const d = maxAbsDiff(await back.get(`what/${g}`), e.what);
        assert.ok(d <= 1e-6, `${g}: W_q + adapter differs from Ŵ by ${d}`);
        layers++;
      }
      assert.equal(layers, 28);
      // Tensors the plan leaves alone are the source's, q/k-permuted as the converter does.
      for (const n of ['token_embd.weight', 'output.weight', 'output_norm.weight', 'blk.3.ffn_norm.weight']) {
        assert.deepEqual(await back.get(`wq/${n}`), await back.get(`hf/${n}`), n);
      }
    } finally {
      await back.close();
      await ckpt.close();
    }
  },
);

test(
  'GGUF from a recipe: per-layer types (K-quants, legacy, fp16), mixed ranks with alpha 0, the embedding adapter',
  { skip: noPython },
  async () => {
    const ckpt = await openCheckpoint(MODEL);
    const recipe: Record<string, { format: string; rank: number }> = {
      'model.embed_tokens.weight': { format: 'q8_0', rank: 4 },
      'model.layers.0.self_attn.q_proj.weight': { format: 'q6_k', rank: 16 },
      'model.layers.0.self_attn.k_proj.weight': { format: 'q4_1', rank: 0 },
      'model.layers.0.mlp.down_proj.weight': { format: 'q2_k', rank: 8 },
      'model.layers.1.mlp.down_proj.weight': { format: 'q3_k', rank: 32 },
      'model.layers.1.mlp.up_proj.weight': { format: 'q3_k', rank: 8 },
      'model.layers.2.self_attn.v_proj.weight': { format: 'fp16', rank: 0 },
      'model.layers.3.mlp.down_proj.weight': { format: 'q5_k', rank: 8 },
      'lm_head.weight': { format: 'q5_1', rank: 8 },
    };
    const back = await exportAndRead(ckpt, { rank: 0, recipe });
    try {
      const m = back.meta;
      assert.equal(m.lora?.['adapter.lora.alpha'], 0);
      const want: Record<string, string> = {
        'token_embd.weight': 'Q8_0',
        'blk.0.attn_q.weight': 'Q8_0', // Q6_K on rows of 128 falls back to Q8_0
        'blk.0.attn_k.weight': 'Q4_1',
        'blk.0.ffn_down.weight': 'Q2_K',
        'blk.1.ffn_down.weight': 'Q3_K',
        'blk.1.ffn_up.weight': 'IQ4_NL', // Q3_K on rows of 128 falls back to IQ4_NL
        'blk.2.attn_v.weight': 'F32', // fp16 leaves W unquantized: written exactly
        'blk.3.ffn_down.weight': 'Q5_K',
        'output.weight': 'Q5_1',
        'blk.2.attn_q.weight': 'F32', // not in the recipe: as the source stores it
      };
      for (const [n, t] of Object.entries(want)) assert.equal(m.types[n], t, n);
      for (const [name, { format, rank }] of Object.entries(recipe)) {
        const g = llamaGgufName(name)!;
        const e = await expected(ckpt, name, format, rank);
        assert.deepEqual(await back.get(`wq/${g}`), e.wq, `${g} (${format})`);
        if (rank > 0) {
          const d = maxAbsDiff(await back.get(`what/${g}`), e.what);
          assert.ok(d <= 1e-6, `${g}: W_q + adapter differs from Ŵ by ${d}`);
        } else assert.equal(m.lora_types?.[`${g}.lora_a`], undefined, `${g} has rank 0`);
      }
      assert.deepEqual(m.lora_dims?.['token_embd.weight.lora_a'], [4, 512]);
      assert.deepEqual(m.lora_dims?.['token_embd.weight.lora_b'], [4, 128]);
    } finally {
      await back.close();
      await ckpt.close();
    }
  },
);

test('the tensor-type file names each planned layer by its GGUF name and type', async () => {
  const ckpt = await openCheckpoint(MODEL);
  const dir = mkdtempSync(join(tmpdir(), 'ql-tt-'));
  try {
    const out = join(dir, 'types.txt');
    const recipe = parseRecipe(
      JSON.stringify({
        kind: 'quant-lens-recipe',
        version: 1,
        layers: {
          'model.layers.0.self_attn.q_proj.weight': { format: 'q6_k', rank: 0 },
          'model.layers.3.mlp.down_proj.weight': { format: 'q3_k:imatrix', rank: 0 },
          'lm_head.weight': { format: 'fp16', rank: 0 },
        },
      }),
    );
    const r = await runExport(
      'tensor-types',
      { checkpoint: ckpt, layers: [], settings: SETTINGS, rank: 0, recipe },
      { out },
    );
    assert.equal(
      readFileSync(out, 'utf8'),
      '^blk\\.0\\.attn_q\\.weight$=q6_k\n^blk\\.3\\.ffn_down\\.weight$=q3_k\n^output\\.weight$=f16\n',
    );
    assert.ok(r.notes.some((n) => /--imatrix/.test(n)));
    // The patterns are regular expressions that match their tensor and no other.
    const patterns = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => new RegExp(l.split('=')[0]!));
    assert.ok(patterns[0]!.test('blk.0.attn_q.weight') && !patterns[0]!.test('blk.10.attn_q.weight'));
  } finally {
    await ckpt.close();
  }
});

test('formats GGUF cannot hold are refused naming the layer, the format and the target', async () => {
  const ckpt = await openCheckpoint(MODEL);
  try {
    await assert.rejects(
      runExport(
        'gguf',
        {
          checkpoint: ckpt,
          layers: ckpt.linearLayers.filter((l) => l.name.endsWith('down_proj.weight')),
          settings: { ...SETTINGS, weightFormat: 'mxint4' },
          rank: 0,
        },
        { out: join(mkdtempSync(join(tmpdir(), 'ql-gguf-')), 'x') },
      ),
      /GGUF.*model\.layers\.0\.mlp\.down_proj\.weight.*mxint4/s,
    );
  } finally {
    await ckpt.close();
  }
});

test('re-exporting a GGUF copies its keys (tokenizer included) and untouched tensors, and quantizes the planned ones', async () => {
  const ckpt = await openCheckpoint(MODEL);
  const dir = mkdtempSync(join(tmpdir(), 'ql-gguf-'));
  try {
    // An unquantized GGUF of the tiny Llama first (every layer "fp32": written as F32, exactly W).
    await runExport(
      'gguf',
      { checkpoint: ckpt, layers: ckpt.linearLayers, settings: { ...SETTINGS, weightFormat: 'fp32' }, rank: 0 },
      { out: join(dir, 'f32') },
    );
  } finally {
    await ckpt.close();
  }
  const source = await openCheckpoint(join(dir, 'f32', 'model.gguf'));
  try {
    assert.equal(source.format, 'gguf');
    const down = source.linearLayers.find((l) => l.name === 'blk.1.ffn_down.weight')!;
    await runExport(
      'gguf',
      { checkpoint: source, layers: [down], settings: SETTINGS, rank: 4 },
      { out: join(dir, 'q') },
    );
    const again = await openCheckpoint(join(dir, 'q', 'model.gguf'));
    try {
      assert.equal(again.metadata['tokenizer.ggml.model'], 'gpt2');
      assert.match(again.metadata['tokenizer.ggml.tokens'] ?? '', /^\[512 × string/);
      assert.match(again.metadata['tokenizer.ggml.merges'] ?? '', /^\[\d+ × string/);
      assert.equal(again.metadata['tokenizer.ggml.merges'], source.metadata['tokenizer.ggml.merges']);
      assert.equal(again.metadata['general.file_type'], '14');
      const types = new Map(again.tensors.map((t) => [t.name, t.dtype]));
      assert.equal(types.get('blk.1.ffn_down.weight'), 'Q4_K');
      assert.equal(types.get('blk.1.ffn_up.weight'), 'F32');
      const w = await source.readWeight('blk.1.ffn_down.weight');
      const r = await reconstructLayer({ name: 'd', data: w.data, out: w.out, in: w.in }, SETTINGS, 4);
      assert.deepEqual((await again.readWeight('blk.1.ffn_down.weight')).data, r.wq);
      assert.deepEqual(await again.readTensor('blk.0.attn_q.weight'), await source.readTensor('blk.0.attn_q.weight'));
    } finally {
      await again.close();
    }
    const lora = await openCheckpoint(join(dir, 'q', 'lora.gguf'));
    try {
      assert.equal(lora.metadata['general.type'], 'adapter');
      assert.equal(lora.metadata['adapter.lora.alpha'], '4');
      assert.deepEqual(
        lora.tensors.map((t) => [t.name, t.shape]),
        [
          ['blk.1.ffn_down.weight.lora_a', [4, 256]],
          ['blk.1.ffn_down.weight.lora_b', [128, 4]],
        ],
      );
    } finally {
      await lora.close();
    }
  } finally {
    await source.close();
  }
});
