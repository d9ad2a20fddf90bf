/**
 * A small Llama-named safetensors checkpoint (every block with q/k/v/o and gate/up/down, of
 * different shapes so that shards have different costs) and a calibration statistics file for it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bf16Tensor, f32Tensor, writeSafetensors, type TestTensor } from './safetensorsWriter';
import { ActivationAccumulator } from '../../src/engine/calibration/accumulator';
import { writeStatsFile } from '../../src/engine/calibration/statsFile';
import { mulberry32 } from '../../src/engine/random';
import { scratchOutput } from './output';

export interface LlamaFixtureOptions {
  blocks?: number;
  hidden?: number;
  intermediate?: number;
  kv?: number;
  seed?: number;
  /** Replace the weights of these layers by other random values (a "changed" checkpoint). */
  perturb?: string[];
}

export function llamaLayerShapes(o: LlamaFixtureOptions = {}): [string, [number, number]][] {
  const h = o.hidden ?? 48;
  const f = o.intermediate ?? 96;
  const kv = o.kv ?? 16;
  const out: [string, [number, number]][] = [];
  for (let b = 0; b < (o.blocks ?? 2); b++) {
    const p = `model.layers.${b}`;
    out.push(
      [`${p}.self_attn.q_proj.weight`, [h, h]],
      [`${p}.self_attn.k_proj.weight`, [kv, h]],
      [`${p}.self_attn.v_proj.weight`, [kv, h]],
      [`${p}.self_attn.o_proj.weight`, [h, h]],
      [`${p}.mlp.gate_proj.weight`, [f, h]],
      [`${p}.mlp.up_proj.weight`, [f, h]],
      [`${p}.mlp.down_proj.weight`, [h, f]],
    );
  }
  return out;
}

/** Writes model.safetensors and config.json into `dir`; returns the checkpoint's path. */
export function writeLlamaCheckpoint(dir: string, o: LlamaFixtureOptions = {}): string {
  const r = mulberry32(o.seed ?? 7);
  const h = o.hidden ?? 48;
  const perturbed = mulberry32(9999);
  const tensors: TestTensor[] = [
    bf16Tensor(
      'model.embed_tokens.weight',
      [20, h],
      Array.from({ length: 20 * h }, () => r() - 0.5),
    ),
  ];
  for (const [name, [out, inF]] of llamaLayerShapes(o)) {
    const src = o.perturb?.includes(name) ? perturbed : r;
    // A few heavy input columns, as real layers have, so that the spectra are not flat.
    const values = Array.from({ length: out * inF }, (_, i) => (src() - 0.5) * 0.1 * (i % inF === 5 ? 8 : 1));
    if (src === perturbed) for (let i = 0; i < out * inF; i++) r(); // keep the other layers' values
    tensors.push(bf16Tensor(name, [out, inF], values));
  }
  tensors.push(f32Tensor('model.norm.weight', [h], new Array<number>(h).fill(1)));
  const path = join(dir, 'model.safetensors');
  writeSafetensors(path, tensors);
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: h }),
  );
  return path;
}

/** A statistics file with mean |x|, RMS and the Gram for every linear layer; returns its path. */
export async function writeLlamaStats(dir: string, o: LlamaFixtureOptions & { file?: string } = {}): Promise<string> {
  const r = mulberry32((o.seed ?? 7) + 100);
  const stats = new Map();
  for (const [name, [, inF]] of llamaLayerShapes(o)) {
    const acc = new ActivationAccumulator(inF, { gram: true });
    for (let b = 0; b < 3; b++) {
      acc.addBatch(
        Float32Array.from({ length: 8 * inF }, (_, i) => (r() - 0.5) * (i % inF === 3 ? 20 : 1)),
        8,
      );
    }
    stats.set(name, acc.finish());
  }
  const path = join(dir, o.file ?? 'stats.safetensors');
  await writeStatsFile(await scratchOutput(path), stats);
  return path;
}
