/**
 * The TinyLlama-1.1B-shaped BF16 safetensors checkpoint of the sweep benchmarks (22 blocks; hidden
 * 2048, MLP 5632, GQA k/v 256) with activation statistics that have a few outlier channels. The
 * weights are random (their spectra mean nothing); shapes, dtype and file layout are TinyLlama's.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bf16Bytes, writeSafetensorsFile, type TensorToWrite } from '../../src/engine/writers/safetensorsWriter';
import { ActivationAccumulator } from '../../src/engine/calibration/accumulator';
import { writeStatsFile } from '../../src/engine/calibration/statsFile';
import { mulberry32 as rng } from '../../src/engine/random';
import { scratchOutput } from '../helpers/output';

const H = 2048;
const I = 5632;
const KV = 256;
const BLOCKS = 22;
const VOCAB = 32000;

/** Gaussian-ish weights (sum of uniforms) with std ≈ 0.02, as at initialisation. */
function weights(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() + r() + r() + r() - 2) * 0.0346;
  return out;
}

export function linearShapes(): { name: string; shape: [number, number] }[] {
  const out: { name: string; shape: [number, number] }[] = [];
  for (let b = 0; b < BLOCKS; b++) {
    const p = `model.layers.${b}`;
    out.push({ name: `${p}.self_attn.q_proj.weight`, shape: [H, H] });
    out.push({ name: `${p}.self_attn.k_proj.weight`, shape: [KV, H] });
    out.push({ name: `${p}.self_attn.v_proj.weight`, shape: [KV, H] });
    out.push({ name: `${p}.self_attn.o_proj.weight`, shape: [H, H] });
    out.push({ name: `${p}.mlp.gate_proj.weight`, shape: [I, H] });
    out.push({ name: `${p}.mlp.up_proj.weight`, shape: [I, H] });
    out.push({ name: `${p}.mlp.down_proj.weight`, shape: [H, I] });
  }
  return out;
}

/** Writes (once) the checkpoint and statistics under `dir`; returns their paths. */
export async function generateTinyLlama(dir: string): Promise<{ ckpt: string; stats: string }> {
  mkdirSync(dir, { recursive: true });
  const ckpt = join(dir, 'model.safetensors');
  const stats = join(dir, 'stats.safetensors');
  if (existsSync(ckpt) && existsSync(stats)) return { ckpt, stats };
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: H,
      intermediate_size: I,
      num_attention_heads: 32,
      num_key_value_heads: 4,
      num_hidden_layers: BLOCKS,
      vocab_size: VOCAB,
      torch_dtype: 'bfloat16',
    }),
  );
  const tensors: TensorToWrite[] = [];
  let seed = 1;
  const add = (name: string, shape: number[]) => {
    const s = seed++;
    tensors.push({
      name,
      dtype: 'BF16',
      shape,
      bytes: () =>
        bf16Bytes(
          weights(
            shape.reduce((a, b) => a * b, 1),
            s,
          ),
        ),
    });
  };
  add('model.embed_tokens.weight', [VOCAB, H]);
  for (let b = 0; b < BLOCKS; b++) {
    const p = `model.layers.${b}`;
    add(`${p}.input_layernorm.weight`, [H]);
    for (const l of linearShapes().filter((x) => x.name.startsWith(`${p}.`))) add(l.name, l.shape);
    add(`${p}.post_attention_layernorm.weight`, [H]);
  }
  add('model.norm.weight', [H]);
  add('lm_head.weight', [VOCAB, H]);
  process.stderr.write(`writing ${ckpt} (${tensors.length} tensors)…\n`);
  await writeSafetensorsFile(await scratchOutput(ckpt), tensors, { format: 'pt' });
  // Activation statistics with a few outlier channels per layer, as real LLM inputs have.
  const map = new Map();
  const r = rng(99);
  for (const l of linearShapes()) {
    const nIn = l.shape[1];
    const acc = new ActivationAccumulator(nIn);
    const rows = 4;
    const x = new Float32Array(rows * nIn);
    for (let b = 0; b < 2; b++) {
      for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * (i % nIn < 6 ? 40 : 1);
      acc.addBatch(x, rows);
    }
    map.set(l.name, acc.finish());
  }
  await writeStatsFile(await scratchOutput(stats), map);
  return { ckpt, stats };
}
