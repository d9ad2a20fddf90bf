/**
 * Task metrics: character error rate of CTC greedy decoding (the OCR recognizer), perplexity from
 * per-token negative log-likelihoods (causal LMs, docs/algorithms.md §4), and cosine similarity of
 * outputs to the float model's (any other model).
 */
import { existsSync, readFileSync } from 'node:fs';
import { QuantLensError } from '../errors';

/** CTC classes: 0 is blank, then the dictionary's characters in file order, then (optionally) a space. */
export interface CtcAlphabet {
  characters: string[];
}

/**
 * PaddleOCR's dictionary file: one character per line; the model's classes are blank + the lines
 * (+ a space when the model has one more class, PaddleOCR's use_space_char).
 */
export function readCtcAlphabet(path: string, classes: number | null): CtcAlphabet {
  if (!existsSync(path)) throw new QuantLensError('not-found', 'no such character dictionary', path);
  const lines = readFileSync(path, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const characters = lines.map((l) => l.replace(/\r$/, ''));
  if (classes !== null) {
    if (classes === characters.length + 2) characters.push(' ');
    else if (classes !== characters.length + 1) {
      throw new QuantLensError(
        'bad-argument',
        `has ${characters.length} characters, but the model predicts ${classes} classes (expected ${characters.length + 1} or ${characters.length + 2})`,
        path,
      );
    }
  }
  return { characters };
}

/** Greedy CTC: best class per step, repeats merged, blanks dropped. `best` is [steps] class ids. */
export function ctcGreedyDecode(best: ArrayLike<number | bigint>, alphabet: CtcAlphabet): string {
  let out = '';
  let previous = -1;
  for (let t = 0; t < best.length; t++) {
    const c = Number(best[t]);
    if (c !== previous && c !== 0) out += alphabet.characters[c - 1] ?? '';
    previous = c;
  }
  return out;
}

/** Levenshtein distance over Unicode code points. */
export function editDistance(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[y.length]!;
}

/** Accumulates CER = Σ edit distance / Σ reference length over lines. */
export class CerAccumulator {
  private errors = 0;
  private chars = 0;
  lines = 0;
  exact = 0;

  add(prediction: string, reference: string): void {
    const d = editDistance(prediction, reference);
    this.errors += d;
    this.chars += [...reference].length;
    this.lines++;
    if (d === 0) this.exact++;
  }

  get value(): number {
    return this.chars === 0 ? 0 : this.errors / this.chars;
  }
}

/** Perplexity = exp(mean NLL over all predicted tokens). */
export class PerplexityAccumulator {
  private nll = 0;
  tokens = 0;

  add(nll: number): void {
    this.nll += nll;
    this.tokens++;
  }

  get value(): number {
    return Math.exp(this.nll / Math.max(1, this.tokens));
  }
}

/** Mean over samples of cos(float output, quantized output), each sample's output flattened. */
export class CosineAccumulator {
  private sum = 0;
  samples = 0;

  addBatch(reference: Float32Array, candidate: Float32Array, batch: number): void {
    if (reference.length !== candidate.length) throw new Error('outputs differ in size');
    const per = reference.length / batch;
    for (let n = 0; n < batch; n++) {
      let dot = 0;
      let rr = 0;
      let cc = 0;
      for (let i = n * per; i < (n + 1) * per; i++) {
        dot += reference[i]! * candidate[i]!;
        rr += reference[i]! * reference[i]!;
        cc += candidate[i]! * candidate[i]!;
      }
      this.sum += rr === 0 && cc === 0 ? 1 : dot / Math.sqrt(rr * cc || 1);
      this.samples++;
    }
  }

  get value(): number {
    return this.sum / Math.max(1, this.samples);
  }
}

/** A percentile by linear interpolation between order statistics, as llama-perplexity reports them. */
export function percentile(sorted: ArrayLike<number>, fraction: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (fraction <= 0) return sorted[0]!;
  if (fraction >= 1) return sorted[n - 1]!;
  const p = fraction * (n - 1);
  const i = Math.floor(p);
  const t = p - i;
  return (1 - t) * sorted[i]! + t * sorted[Math.min(i + 1, n - 1)]!;
}

export interface KldSummary {
  /** Mean KL(float ‖ quantized) per predicted token, in nats. */
  mean: number;
  median: number;
  p99: number;
  p999: number;
  max: number;
  /** Share of tokens whose most likely next token is the same for both models. */
  sameTop: number;
  /** Perplexity of the quantized and of the float model on the same tokens. */
  perplexity: number;
  floatPerplexity: number;
  tokens: number;
}

/**
 * KL divergence of the quantized model's next-token distribution from the float model's, token by
 * token, with the statistics llama.cpp's `llama-perplexity --kl-divergence` prints: mean, median,
 * 99th and 99.9th percentiles, maximum, and the same-top-token rate. Log-softmax and the sums are
 * taken in float64 from the float32 logits of both models.
 */
export class KldAccumulator {
  private klds = new Float64Array(1024);
  private count = 0;
  private sumKld = 0;
  private same = 0;
  private nllQ = 0;
  private nllF = 0;

  /**
   * One position: `f` and `q` are the two models' logits over the vocabulary, `label` the token
   * that follows (for the perplexities).
   */
  add(f: Float32Array, q: Float32Array, label: number): void {
    const v = f.length;
    let maxF = -Infinity;
    let maxQ = -Infinity;
    let topF = 0;
    let topQ = 0;
    for (let i = 0; i < v; i++) {
      if (f[i]! > maxF) {
        maxF = f[i]!;
        topF = i;
      }
      if (q[i]! > maxQ) {
        maxQ = q[i]!;
        topQ = i;
      }
    }
    let sumF = 0;
    let sumQ = 0;
    for (let i = 0; i < v; i++) {
      sumF += Math.exp(f[i]! - maxF);
      sumQ += Math.exp(q[i]! - maxQ);
    }
    const lseF = maxF + Math.log(sumF);
    const lseQ = maxQ + Math.log(sumQ);
    let kld = 0;
    for (let i = 0; i < v; i++) {
      const lf = f[i]! - lseF;
      kld += Math.exp(lf) * (lf - (q[i]! - lseQ));
    }
    // Rounding can leave a hair below zero for identical distributions.
    kld = Math.max(0, kld);
    if (this.count === this.klds.length) {
      const grown = new Float64Array(this.klds.length * 2);
      grown.set(this.klds);
      this.klds = grown;
    }
    this.klds[this.count++] = kld;
    this.sumKld += kld;
    if (topF === topQ) this.same++;
    this.nllF += lseF - f[label]!;
    this.nllQ += lseQ - q[label]!;
  }

  summary(): KldSummary {
    const n = this.count;
    const sorted = this.klds.slice(0, n).sort();
    const median = n === 0 ? NaN : n % 2 ? sorted[(n - 1) / 2]! : 0.5 * (sorted[n / 2 - 1]! + sorted[n / 2]!);
    return {
      mean: n ? this.sumKld / n : NaN,
      median,
      p99: percentile(sorted, 0.99),
      p999: percentile(sorted, 0.999),
      max: n ? sorted[n - 1]! : NaN,
      sameTop: n ? this.same / n : NaN,
      perplexity: Math.exp(this.nllQ / Math.max(1, n)),
      floatPerplexity: Math.exp(this.nllF / Math.max(1, n)),
      tokens: n,
    };
  }
}
