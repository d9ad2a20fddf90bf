/**
 * Fixtures for the scenarios beyond one layer at a time (rank allocation, channel reassembly,
 * fitted step sizes, checkpoint comparison), built on the UI fixture of quantLensUi.ts:
 * - a "fine-tuned" copy of llama-mini in which two layers changed by a low-rank update, one by
 *   noise below the change tolerance, and the rest not at all;
 * - a calibration statistics file with activation rows (act_samples) for the shared input of
 *   block 0's q/k/v, with outlier channels, for QLLM's channel reassembly.
 * Written at run time, deterministically, once per run.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ActivationAccumulator } from '../../../src/engine/calibration/accumulator';
import { f32Tensor, writeSafetensors, type TestTensor } from '../../helpers/safetensorsWriter';
import { ui, writeUiFixtures } from './quantLensUi';

export const analysisFixture = {
  /** The second checkpoint of the comparison. */
  tunedFolder: 'quant-lens-ui/llama-mini-ft',
  tuned: 'quant-lens-ui/llama-mini-ft/model.safetensors',
  /** Statistics with act_samples for block 0's q/k/v (and mean |x|, RMS for every layer). */
  samples: 'quant-lens-ui/llama-mini/stats-samples.safetensors',
  /** Layers the tuned copy changed (low-rank updates of 5 % and 10 %). */
  changed: [ui.layer(1, 'q_proj'), ui.layer(1, 'v_proj')],
  /** Changed by noise far below the default tolerance: "unchanged". */
  nearlySame: ui.layer(0, 'down_proj'),
  /** The reassembly site with samples. */
  siteLayers: [ui.layer(0, 'q_proj'), ui.layer(0, 'k_proj'), ui.layer(0, 'v_proj')],
  sampleRows: 256,
} as const;

interface F32Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Reads an all-F32 safetensors file (the UI fixture) back. */
function readF32Safetensors(path: string): F32Tensor[] {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + n;
  return Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, t]) => {
      if (t.dtype !== 'F32') throw new Error(`${name}: expected F32, found ${t.dtype}`);
      const [from, to] = t.data_offsets;
      const copy = Uint8Array.from(bytes.subarray(base + from, base + to));
      return { name, shape: t.shape, data: new Float32Array(copy.buffer) };
    });
}

/** Deterministic normal samples (Box–Muller on a 32-bit LCG). */
function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

/** W + a rank-r update of relative Frobenius size `relative`. */
function lowRankUpdate(w: F32Tensor, rank: number, relative: number, seed: number): Float32Array {
  const [out, inF] = w.shape as [number, number];
  const g = gaussian(seed);
  const u = Float32Array.from({ length: out * rank }, g);
  const v = Float32Array.from({ length: rank * inF }, g);
  const d = new Float32Array(out * inF);
  for (let o = 0; o < out; o++)
    for (let r = 0; r < rank; r++) {
      const a = u[o * rank + r]!;
      for (let i = 0; i < inF; i++) d[o * inF + i]! += a * v[r * inF + i]!;
    }
  const scale = (relative * norm(w.data)) / norm(d);
  return w.data.map((x, i) => x + scale * d[i]!);
}

export function writeAnalysisFixtures(workspace: string): void {
  writeUiFixtures(workspace);
  const tunedPath = join(workspace, analysisFixture.tuned);
  if (!existsSync(tunedPath)) {
    const base = readF32Safetensors(join(workspace, ui.file));
    const tensors: TestTensor[] = base.map((t) => {
      let data = t.data;
      if (t.name === analysisFixture.changed[0]) data = lowRankUpdate(t, 4, 0.05, 11);
      else if (t.name === analysisFixture.changed[1]) data = lowRankUpdate(t, 2, 0.1, 12);
      else if (t.name === analysisFixture.nearlySame) {
        const g = gaussian(13);
        const scale = (1e-4 * norm(t.data)) / Math.sqrt(t.data.length);
        data = t.data.map((x) => x + scale * g());
      }
      return f32Tensor(t.name, t.shape, data);
    });
    mkdirSync(join(workspace, analysisFixture.tunedFolder), { recursive: true });
    writeSafetensors(tunedPath, tensors, { format: 'pt' });
    writeFileSync(
      join(workspace, analysisFixture.tunedFolder, 'config.json'),
      readFileSync(join(workspace, ui.folder, 'config.json')),
    );
  }
  const samplesPath = join(workspace, analysisFixture.samples);
  if (!existsSync(samplesPath)) {
    const g = gaussian(4321);
    const stats: TestTensor[] = [];
    const tokens: Record<string, number> = {};
    // The shared input of block 0's q/k/v: a few channels with activations 25× the others.
    const C = 256;
    const rows = analysisFixture.sampleRows;
    const x = Float32Array.from({ length: rows * C }, (_, i) => ((i % C) % 61 === 7 ? 25 * g() : g()));
    const acc = new ActivationAccumulator(C, { sampleRows: rows });
    acc.addBatch(x, rows);
    const s = acc.finish();
    for (const name of ui.layers) {
      const inF = name.includes('down_proj') ? 512 : 256;
      if ((analysisFixture.siteLayers as readonly string[]).includes(name)) {
        stats.push(f32Tensor(`${name}.act_mean_abs`, [C], s.meanAbs));
        stats.push(f32Tensor(`${name}.act_rms`, [C], s.rms));
        stats.push(f32Tensor(`${name}.act_samples`, [s.samples!.rows, C], s.samples!.data));
        tokens[name] = s.tokens;
      } else {
        const meanAbs = Float32Array.from({ length: inF }, () => 0.4 + 0.2 * Math.abs(g()));
        stats.push(f32Tensor(`${name}.act_mean_abs`, [inF], meanAbs));
        stats.push(
          f32Tensor(
            `${name}.act_rms`,
            [inF],
            meanAbs.map((v) => 1.3 * v),
          ),
        );
        tokens[name] = 2048;
      }
    }
    writeSafetensors(samplesPath, stats, {
      format: 'quant-lens-stats',
      version: '1',
      tokens: JSON.stringify(tokens),
      producer: 'quant-lens e2e fixture',
    });
  }
}
