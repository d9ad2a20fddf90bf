/**
 * The workspace the e2e suite opens: small checkpoints written at run time with the same
 * safetensors writer the unit tests use, so their expected content is stated here, next to the
 * bytes, and the repository carries no binary fixtures.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bf16Tensor, f32Tensor, writeSafetensors, type TestTensor } from '../../helpers/safetensorsWriter';

export interface ExpectedTensor {
  name: string;
  dtype: string;
  /** As the overview shows it: "[2, 4]". */
  shape: string;
}

function f16Tensor(name: string, shape: number[]): TestTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, dtype: 'F16', shape, bytes: new Uint8Array(n * 2) };
}

function i8Tensor(name: string, shape: number[]): TestTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    name,
    dtype: 'I8',
    shape,
    bytes: new Uint8Array(Int8Array.from({ length: n }, (_, i) => (i % 7) - 3).buffer),
  };
}

const ramp = (n: number) => Array.from({ length: n }, (_, i) => (i - n / 2) / n);

/** A two-block Llama-style model in one file, with the dtypes a real checkpoint mixes. */
const tinyLlama: TestTensor[] = [
  bf16Tensor('model.embed_tokens.weight', [16, 8], ramp(128)),
  f32Tensor('model.layers.0.self_attn.q_proj.weight', [8, 8], ramp(64)),
  f32Tensor('model.layers.0.mlp.down_proj.weight', [8, 12], ramp(96)),
  f16Tensor('model.layers.1.self_attn.k_proj.weight', [4, 8]),
  i8Tensor('model.layers.1.mlp.up_proj.weight', [12, 8]),
  f32Tensor('model.norm.weight', [8], ramp(8)),
];

export const fixtures = {
  /** Relative to the workspace root. */
  tiny: {
    path: 'tiny-llama/model.safetensors',
    fileName: 'model.safetensors',
    folder: 'tiny-llama',
    architecture: 'LlamaForCausalLM',
    tensors: tinyLlama.map<ExpectedTensor>((t) => ({ name: t.name, dtype: t.dtype, shape: `[${t.shape.join(', ')}]` })),
  },
  /** Header length field far larger than the file: the reader must refuse it with a clear message. */
  broken: { path: 'broken.safetensors', fileName: 'broken.safetensors' },
  /** Not a checkpoint: the explorer must not offer the command on it. */
  notes: { path: 'notes.txt', fileName: 'notes.txt' },
} as const;

export function writeWorkspace(root: string): void {
  mkdirSync(join(root, fixtures.tiny.folder), { recursive: true });
  writeSafetensors(join(root, fixtures.tiny.path), tinyLlama, { format: 'pt' });
  writeFileSync(
    join(root, fixtures.tiny.folder, 'config.json'),
    JSON.stringify({ architectures: [fixtures.tiny.architecture], model_type: 'llama' }, null, 2),
  );
  const broken = new Uint8Array(64);
  new DataView(broken.buffer).setBigUint64(0, 1_000_000n, true);
  broken.set(new TextEncoder().encode('{"a":'), 8);
  writeFileSync(join(root, fixtures.broken.path), broken);
  writeFileSync(join(root, fixtures.notes.path), 'Not a checkpoint.\n');
}
