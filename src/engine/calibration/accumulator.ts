/**
 * Streaming activation statistics for one linear layer's input, with the official semantics:
 *  - act_mean_abs: per calibration batch, the mean of |x| over all tokens of the batch, then the
 *    element-wise max over batches (LQER's ScaleHookFactoryMeanAbs: "max([mean(abs(X)) for X in
 *    CalibrationSet])"). Its value therefore depends on the batch size, as in the reference code.
 *  - act_rms: sqrt(Σ x² / n_tokens) pooled over all tokens (QERA's diagonal statistic).
 *  - act_gram: Σ x xᵀ / n_tokens pooled over all tokens, accumulated in float64 (QERA's R_xx).
 * Memory is O(channels) (O(channels²) with the Gram), independent of the number of batches.
 */
import { totalmem } from 'node:os';
import { QuantLensError } from '../errors';
import { mulberry32 } from '../random';

/**
 * Accumulators allocate their buffers up front (a Gram is in² float64, a reservoir rows × in
 * float32) and hold them to the end: what would take more than half of this machine's memory is
 * refused before anything is allocated, naming the model and what asked for it.
 */
export function refuseBeyondMemory(bytes: number, what: string, file: string): void {
  const total = totalmem();
  if (bytes <= total / 2) return;
  const gib = (n: number) => (n / 2 ** 30).toFixed(1);
  throw new QuantLensError(
    'too-large',
    `${what} needs ${gib(bytes)} GiB of memory, more than half of this machine's ${gib(total)} GiB: ask for less, or select fewer layers`,
    file,
  );
}

export interface AccumulatorOptions {
  gram?: boolean;
  /** Keep up to this many activation rows (reservoir sample) for analyses that need raw rows. */
  sampleRows?: number;
  /** Seed of the reservoir sampler, so runs reproduce. */
  seed?: number;
}

export interface LayerStatistics {
  channels: number;
  tokens: number;
  batches: number;
  meanAbs: Float32Array;
  rms: Float32Array;
  gram?: Float64Array;
  samples?: { rows: number; data: Float32Array };
}

export class ActivationAccumulator {
  private readonly maxMeanAbs: Float64Array;
  private readonly sumSq: Float64Array;
  private readonly gram: Float64Array | undefined;
  private tokens = 0;
  private batches = 0;
  private readonly sampleCap: number;
  private readonly samples: Float32Array;
  private sampled = 0;
  private seen = 0;
  private readonly random: () => number;

  constructor(
    readonly channels: number,
    options: AccumulatorOptions = {},
  ) {
    this.maxMeanAbs = new Float64Array(channels);
    this.sumSq = new Float64Array(channels);
    this.gram = options.gram ? new Float64Array(channels * channels) : undefined;
    this.sampleCap = Math.max(0, options.sampleRows ?? 0);
    this.samples = new Float32Array(this.sampleCap * channels);
    this.random = mulberry32(options.seed ?? 1);
  }

  /**
   * Adds one calibration batch: `rows` activation rows (tokens) of `channels` values each,
   * row-major. The Gram, when kept, is accumulated here in JS (O(rows·C²)); for wide layers let
   * onnxruntime compute XᵀX and pass the reduced sums to `addBatchSums` instead.
   */
  addBatch(x: Float32Array, rows: number): void {
    const C = this.channels;
    if (x.length !== rows * C) throw new Error(`batch has ${x.length} values, expected ${rows}×${C}`);
    if (rows === 0) return;
    const sumAbs = new Float64Array(C);
    const sumSq = new Float64Array(C);
    for (let t = 0; t < rows; t++) {
      const o = t * C;
      for (let c = 0; c < C; c++) {
        const v = x[o + c]!;
        sumAbs[c]! += Math.abs(v);
        sumSq[c]! += v * v;
      }
    }
    let gram: Float64Array | undefined;
    if (this.gram) {
      gram = new Float64Array(C * C);
      addGram(gram, x, rows, C);
    }
    this.addBatchSums({ rows, sumAbs, sumSq, gram });
    this.sample(x, rows);
  }

  /** Adds one batch given its per-channel sums (Σ|x|, Σx²) and optionally XᵀX, computed elsewhere. */
  addBatchSums(b: {
    rows: number;
    sumAbs: ArrayLike<number>;
    sumSq: ArrayLike<number>;
    gram?: ArrayLike<number>;
  }): void {
    const C = this.channels;
    if (b.rows === 0) return;
    if (b.sumAbs.length !== C || b.sumSq.length !== C)
      throw new Error(`batch sums have the wrong length (expected ${C})`);
    for (let c = 0; c < C; c++) {
      const m = b.sumAbs[c]! / b.rows;
      if (m > this.maxMeanAbs[c]!) this.maxMeanAbs[c] = m;
      this.sumSq[c]! += b.sumSq[c]!;
    }
    if (this.gram) {
      if (!b.gram || b.gram.length !== C * C) throw new Error(`a ${C}×${C} Gram block is required for every batch`);
      for (let i = 0; i < C * C; i++) this.gram[i]! += b.gram[i]!;
    }
    this.tokens += b.rows;
    this.batches++;
  }

  /** Offers activation rows to the reservoir sample (used with addBatchSums when rows are at hand). */
  sample(x: Float32Array, rows: number): void {
    const C = this.channels;
    for (let t = 0; t < rows && this.sampleCap > 0; t++) {
      const slot = this.sampled < this.sampleCap ? this.sampled++ : Math.floor(this.random() * (this.seen + 1));
      if (slot < this.sampleCap) this.samples.set(x.subarray(t * C, (t + 1) * C), slot * C);
      this.seen++;
    }
  }

  finish(): LayerStatistics {
    const C = this.channels;
    const n = Math.max(1, this.tokens);
    const rms = new Float32Array(C);
    for (let c = 0; c < C; c++) rms[c] = Math.sqrt(this.sumSq[c]! / n);
    const out: LayerStatistics = {
      channels: C,
      tokens: this.tokens,
      batches: this.batches,
      meanAbs: Float32Array.from(this.maxMeanAbs),
      rms,
    };
    if (this.gram) out.gram = this.gram.map((v) => v / n);
    if (this.sampleCap > 0) out.samples = { rows: this.sampled, data: this.samples.slice(0, this.sampled * C) };
    return out;
  }
}

/** G += XᵀX for a rows×C block, using symmetry (upper triangle, mirrored at the end of each call). */
function addGram(G: Float64Array, x: Float32Array, rows: number, C: number): void {
  for (let t = 0; t < rows; t++) {
    const o = t * C;
    for (let i = 0; i < C; i++) {
      const xi = x[o + i]!;
      if (xi === 0) continue;
      const gi = i * C;
      for (let j = i; j < C; j++) G[gi + j]! += xi * x[o + j]!;
    }
  }
  for (let i = 0; i < C; i++) for (let j = i + 1; j < C; j++) G[j * C + i] = G[i * C + j]!;
}
