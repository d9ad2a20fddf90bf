/**
 * Whole-model sweep benchmark (issue: quantization engine, speed and memory): all 154 linear
 * layers of a TinyLlama-1.1B-shaped BF16 safetensors checkpoint (22 blocks; hidden 2048, MLP 5632,
 * GQA k/v 256) at L²QER rank 32, MXINT4 weights, MXINT8 A/B, with both full spectra per layer.
 *
 * Runs Quant Lens (`quant-lens inspect --json`, built bundle, in a child process) and a Python
 * script that does the same the way the reference LQER code does it (torch, full SVD of S·Eᵀ per
 * layer plus svdvals of E), on the same files in the same run, and prints wall time, peak RSS and
 * the ratios. The weights are random (their spectra mean nothing); shapes, dtype and file layout
 * are TinyLlama's.
 *
 *   npx tsx test/bench/sweep.ts [--dir /tmp/ql-tinyllama] [--layers N] [--skip-python]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bf16Bytes, writeSafetensorsFile, type TensorToWrite } from '../../src/engine/writers/safetensorsWriter';
import { ActivationAccumulator } from '../../src/engine/calibration/accumulator';
import { writeStatsFile } from '../../src/engine/calibration/statsFile';
import { mulberry32 as rng } from '../../src/engine/random';
import { scratchOutput } from '../helpers/output';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: '/tmp/ql-tinyllama' },
    layers: { type: 'string' },
    'skip-python': { type: 'boolean' },
  },
});
const dir = values.dir;
const root = join(import.meta.dirname, '../..');

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

function linearShapes(): { name: string; shape: [number, number] }[] {
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

async function generate(): Promise<{ ckpt: string; stats: string }> {
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

interface RunResult {
  seconds: number;
  peakRssMb: number;
  stdout: string;
}

function run(cmd: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`));
      const m = /PEAK_RSS_KB=(\d+)/.exec(stdout);
      resolve({ seconds: (performance.now() - t0) / 1000, peakRssMb: m ? Number(m[1]) / 1024 : NaN, stdout });
    });
  });
}

async function main(): Promise<void> {
  const { ckpt, stats } = await generate();
  const all = linearShapes();
  const n = values.layers ? Number(values.layers) : all.length;
  const layerArgs = all.slice(0, n).flatMap((l) => ['--layer', l.name]);
  // The CLI bundle exports main(); the wrapper prints the process's peak RSS once it is done.
  const wrapper = `const { main } = require(${JSON.stringify(join(root, 'dist/cli.js'))});
main(process.argv.slice(2)).then((code) => { process.stdout.write('PEAK_RSS_KB=' + process.resourceUsage().maxRSS + '\\n'); process.exitCode = code; });`;
  // A file, not `node -e`: node would take a leading `inspect` argument as its debugger command.
  const wrapperFile = join(dir, 'peak-rss-wrapper.cjs');
  writeFileSync(wrapperFile, wrapper);
  const ours = await run(process.execPath, [
    wrapperFile,
    'inspect',
    ckpt,
    '--calib',
    stats,
    '--method',
    'l2qer',
    '--format',
    'mxint4',
    '--rank',
    '32',
    '--json',
    ...layerArgs,
  ]);
  const records = ours.stdout.split('\n').filter((l) => l.startsWith('{'));
  const ourLayers = records.length;
  console.log(
    `Quant Lens: ${ourLayers} layers in ${ours.seconds.toFixed(1)} s, peak RSS ${ours.peakRssMb.toFixed(0)} MB`,
  );
  if (values['skip-python']) return;
  const py = await run('python3', [join(root, 'test/bench/sweep_reference.py'), ckpt, stats, String(n)]);
  const pyLayers = Number(/LAYERS=(\d+)/.exec(py.stdout)?.[1] ?? NaN);
  console.log(
    `Python reference (torch, full SVD): ${pyLayers} layers in ${py.seconds.toFixed(1)} s, peak RSS ${py.peakRssMb.toFixed(0)} MB`,
  );
  console.log(
    `speed-up: ${(py.seconds / ours.seconds).toFixed(2)}× (goal ≥ 5×); peak RSS ${ours.peakRssMb.toFixed(0)} MB (goal < 2048 MB)`,
  );
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
