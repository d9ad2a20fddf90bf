/**
 * The calibration statistics file: safetensors holding, per weight tensor N,
 *   N.act_mean_abs  F32 [in]      max over batches of the per-batch mean |x| (L²QER's statistic, raw)
 *   N.act_rms       F32 [in]      sqrt(mean x²) over all tokens (QERA-approx)
 *   N.act_gram      F32|F64 [in,in] mean of x xᵀ over all tokens (QERA-exact, optional)
 *   N.act_samples   F32 [rows,in] a bounded sample of activation rows (QLLM analysis, optional)
 * and __metadata__ {"format": "quant-lens-stats", "version": "1", "tokens": JSON {N: count}, …}.
 */
import { basename } from 'node:path';
import { QuantLensError } from '../errors';
import { RandomAccessFile } from '../readers/fileAccess';
import { readSafetensorsHeader, readSafetensorsTensor, type SafetensorsEntry } from '../readers/safetensors';
import { elementCount } from '../readers/checkpoint';
import { f32Bytes, f64Bytes, writeSafetensorsFile, type TensorToWrite } from '../writers/safetensorsWriter';
import type { CheckedOutput } from '../writers/safeOutput';
import type { LayerStatistics } from './accumulator';
import type { LayerCalibration } from '../methods/analyzeLayer';

import { STATS_SUFFIXES, statsNameFor, type StatKind } from './statKinds';

export { STATS_SUFFIXES, type StatKind };

export interface StatsFileInfo {
  path: string;
  metadata: Record<string, string>;
  /** Weight names with at least one statistic, and which statistics each has. */
  layers: Map<string, Set<StatKind>>;
  tokens: Record<string, number>;
}

export class StatsFile {
  private constructor(
    readonly info: StatsFileInfo,
    private readonly file: RandomAccessFile,
    private readonly entries: Map<string, SafetensorsEntry>,
  ) {}

  static async open(path: string): Promise<StatsFile> {
    const file = await RandomAccessFile.open(path);
    try {
      const header = await readSafetensorsHeader(file);
      const entries = new Map(header.entries.map((e) => [e.name, e]));
      const layers = new Map<string, Set<StatKind>>();
      for (const e of header.entries) {
        const m = /^(.*)\.(act_mean_abs|act_rms|act_gram|act_samples)$/.exec(e.name);
        if (!m) continue;
        const kinds = layers.get(m[1]!) ?? new Set<StatKind>();
        kinds.add(m[2] as StatKind);
        layers.set(m[1]!, kinds);
      }
      if (layers.size === 0) {
        throw new QuantLensError(
          'malformed',
          'holds no activation statistics (no tensors named <weight>.act_mean_abs, .act_rms, …)',
          path,
        );
      }
      let tokens: Record<string, number> = {};
      if (header.metadata.tokens) {
        try {
          tokens = JSON.parse(header.metadata.tokens) as Record<string, number>;
        } catch {
          throw new QuantLensError('malformed', '__metadata__.tokens is not JSON', path);
        }
      }
      return new StatsFile({ path, metadata: header.metadata, layers, tokens }, file, entries);
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  private readonly names = new Map<string, string | undefined>();

  /** The file's name for a weight (see statsNameFor); the weight's own name when none matches. */
  nameFor(layer: string): string {
    if (!this.names.has(layer)) this.names.set(layer, statsNameFor(this.info.layers.keys(), layer));
    return this.names.get(layer) ?? layer;
  }

  has(layer: string, kind: StatKind): boolean {
    return this.info.layers.get(this.nameFor(layer))?.has(kind) ?? false;
  }

  /** Calibration tokens counted for a weight's input, if the file says. */
  tokensFor(layer: string): number | undefined {
    return this.info.tokens[this.nameFor(layer)];
  }

  /** Reads one statistic, checking its shape (for a layer with `inFeatures` input channels) and values. */
  async read(layer: string, kind: StatKind, inFeatures: number): Promise<Float32Array> {
    const values = await this.readRaw(layer, kind, inFeatures);
    this.checkValues(`${this.nameFor(layer)}.${kind}`, kind, values);
    return values;
  }

  private async readRaw(layer: string, kind: StatKind, inFeatures: number): Promise<Float32Array> {
    const e = this.entries.get(`${this.nameFor(layer)}.${kind}`);
    if (!e) {
      throw new QuantLensError('needs-calibration', `has no ${kind} for layer "${layer}"`, this.info.path);
    }
    const okShape =
      kind === 'act_gram'
        ? e.shape.length === 2 && e.shape[0] === inFeatures && e.shape[1] === inFeatures
        : kind === 'act_samples'
          ? e.shape.length === 2 && e.shape[1] === inFeatures
          : e.shape.length === 1 && e.shape[0] === inFeatures;
    if (!okShape) {
      throw new QuantLensError(
        'malformed',
        `${e.name} has shape [${e.shape.join(', ')}], which does not fit a layer with ${inFeatures} input features`,
        this.info.path,
      );
    }
    return readSafetensorsTensor(this.file, e);
  }

  /**
   * Statistics that no activations can produce are refused, naming the tensor and the problem: a
   * NaN or an infinity anywhere, a negative mean |x| or RMS. Methods would otherwise turn them into
   * silently wrong scales.
   */
  private checkValues(tensor: string, kind: StatKind, v: ArrayLike<number>): void {
    const shape = this.entries.get(tensor)?.shape ?? [v.length];
    const bad = (i: number, what: string): never => {
      const cols = shape.length === 2 ? shape[1]! : v.length;
      const at = shape.length === 2 ? `[${Math.floor(i / cols)}, ${i % cols}]` : `channel ${i}`;
      throw new QuantLensError('malformed', `${tensor} holds ${what} (at ${at}: ${v[i]}); recalibrate`, this.info.path);
    };
    // Samples are activations and a Gram's off-diagonal entries covariances: both may be negative.
    const signed = kind === 'act_samples' || kind === 'act_gram';
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      if (Number.isNaN(x)) bad(i, 'NaN');
      if (!Number.isFinite(x)) bad(i, 'an infinite value');
      if (!signed && x < 0)
        bad(i, `a negative value, which ${kind === 'act_rms' ? 'an RMS' : 'a mean of |x|'} cannot be`);
    }
  }

  /**
   * A Gram matrix E[x xᵀ] is finite, symmetric and positive semi-definite. The O(n²) necessary
   * conditions are checked here: symmetry, a non-negative diagonal, and |G_ij| ≤ √(G_ii·G_jj) for
   * every pair (each 2×2 principal minor ≥ 0), with room for float rounding. What they miss shows
   * as a negative quadratic form where the Gram is used (analyzeLayer, stepFitting).
   */
  private checkGram(tensor: string, g: Float64Array, n: number): void {
    const bad = (what: string): never => {
      throw new QuantLensError(
        'malformed',
        `${tensor} is not a Gram matrix E[x xᵀ]: ${what}; recalibrate`,
        this.info.path,
      );
    };
    let maxDiag = 0;
    for (let i = 0; i < n; i++) {
      const d = g[i * n + i]!;
      if (!Number.isFinite(d)) bad(`G[${i},${i}] is ${d}`);
      if (d < 0) bad(`the diagonal entry G[${i},${i}] = ${d} is negative`);
      maxDiag = Math.max(maxDiag, d);
    }
    const tol = 1e-6 * maxDiag;
    for (let i = 0; i < n; i++) {
      const dii = g[i * n + i]!;
      for (let j = i + 1; j < n; j++) {
        const a = g[i * n + j]!;
        const b = g[j * n + i]!;
        if (!Number.isFinite(a) || !Number.isFinite(b)) bad(`G[${i},${j}] is ${Number.isFinite(a) ? b : a}`);
        if (Math.abs(a - b) > 1e-4 * (Math.abs(a) + Math.abs(b)) + tol) {
          bad(`it is not symmetric (G[${i},${j}] = ${a}, G[${j},${i}] = ${b})`);
        }
        if (a * a > dii * g[j * n + j]! * (1 + 1e-4) + tol * tol) {
          bad(
            `it is not positive semi-definite (|G[${i},${j}]| = ${Math.abs(a)} exceeds √(G[${i},${i}]·G[${j},${j}]))`,
          );
        }
      }
    }
  }

  /** The Gram in float64 (read from F64 directly to keep its precision). */
  async readGram(layer: string, inFeatures: number): Promise<Float64Array> {
    const e = this.entries.get(`${this.nameFor(layer)}.act_gram`);
    let out: Float64Array;
    if (e?.elementType === 'F64') {
      if (e.shape[0] !== inFeatures || e.shape[1] !== inFeatures) await this.read(layer, 'act_gram', inFeatures);
      const bytes = await this.file.read(e.offset, e.byteLength, e.name);
      out = new Float64Array(elementCount(e.shape));
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < out.length; i++) out[i] = dv.getFloat64(8 * i, true);
    } else out = Float64Array.from(await this.readRaw(layer, 'act_gram', inFeatures));
    this.checkGram(`${this.nameFor(layer)}.act_gram`, out, inFeatures);
    return out;
  }

  /** Whatever statistics the file has for one layer (each method takes what it needs). */
  async layerCalibration(layer: string, inFeatures: number): Promise<LayerCalibration> {
    const c: LayerCalibration = {};
    if (this.has(layer, 'act_mean_abs')) c.meanAbs = await this.read(layer, 'act_mean_abs', inFeatures);
    if (this.has(layer, 'act_rms')) c.rms = await this.read(layer, 'act_rms', inFeatures);
    if (this.has(layer, 'act_gram')) c.gram = await this.readGram(layer, inFeatures);
    const tokens = this.tokensFor(layer);
    if (tokens !== undefined) c.tokens = tokens;
    return c;
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  get name(): string {
    return basename(this.info.path);
  }
}

export async function writeStatsFile(
  out: CheckedOutput,
  stats: Map<string, LayerStatistics>,
  extraMetadata: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<void> {
  const tensors: TensorToWrite[] = [];
  const tokens: Record<string, number> = {};
  for (const [name, s] of stats) {
    tokens[name] = s.tokens;
    tensors.push({ name: `${name}.act_mean_abs`, dtype: 'F32', shape: [s.channels], bytes: () => f32Bytes(s.meanAbs) });
    tensors.push({ name: `${name}.act_rms`, dtype: 'F32', shape: [s.channels], bytes: () => f32Bytes(s.rms) });
    if (s.gram) {
      const g = s.gram;
      tensors.push({
        name: `${name}.act_gram`,
        dtype: 'F64',
        shape: [s.channels, s.channels],
        bytes: () => f64Bytes(g),
      });
    }
    if (s.samples && s.samples.rows > 0) {
      const smp = s.samples;
      tensors.push({
        name: `${name}.act_samples`,
        dtype: 'F32',
        shape: [smp.rows, s.channels],
        bytes: () => f32Bytes(smp.data),
      });
    }
  }
  await writeSafetensorsFile(
    out,
    tensors,
    {
      format: 'quant-lens-stats',
      version: '1',
      tokens: JSON.stringify(tokens),
      act_mean_abs: 'max over calibration batches of the per-batch mean |x| per input channel (LQER semantics)',
      ...extraMetadata,
    },
    signal,
  );
}
