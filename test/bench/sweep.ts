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
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateTinyLlama, linearShapes } from './tinyllama';
import { peakRssWrapper, productEnv, sweepArgs } from './sweepProduct';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: '/tmp/ql-tinyllama' },
    layers: { type: 'string' },
    'skip-python': { type: 'boolean' },
  },
});
const dir = values.dir;
const root = join(import.meta.dirname, '../..');

interface RunResult {
  seconds: number;
  peakRssMb: number;
  stdout: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
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
  const { ckpt, stats } = await generateTinyLlama(dir);
  const all = linearShapes();
  const n = values.layers ? Number(values.layers) : all.length;
  const layers = all.slice(0, n).map((l) => l.name);
  // Run as the CLI runs (with the environment it gives itself); the wrapper prints the peak RSS.
  const ours = await run(process.execPath, sweepArgs(peakRssWrapper(dir), ckpt, stats, layers), productEnv());
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
