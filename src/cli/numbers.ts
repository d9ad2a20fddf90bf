/**
 * Numeric options, each bounded by what is meaningful: a value outside its range is refused with
 * the range and the reason in the message, before any file is opened. Unbounded values were the
 * way to hang or crash the tool (`--threads 100000` hangs onnxruntime's session creation, `--bins
 * 1e9` and `--samples 1e9` grow memory without end), so every numeric option goes through here.
 */
import { availableParallelism } from 'node:os';
import { QuantLensError } from '../engine/errors';

export interface Bounds {
  min: number;
  max: number;
  /** Why the range is what it is, for the message: "the CPU cores of this machine". */
  why?: string;
  /** The minimum itself is excluded (a positive real). */
  minExclusive?: boolean;
}

function describe(flag: string, kind: string, b: Bounds): string {
  const range = b.minExclusive ? `above ${b.min} and at most ${b.max}` : `from ${b.min} to ${b.max}`;
  return `${flag} must be ${kind} ${range}${b.why ? ` (${b.why})` : ''}`;
}

function parseNumber(v: string): number {
  // Number('') is 0 and Number(' ') too: an empty value is no number.
  return v.trim() === '' ? NaN : Number(v);
}

/** An integer option within bounds; undefined when not given. */
export function intOption(v: string | undefined, flag: string, b: Bounds): number | undefined {
  if (v === undefined) return undefined;
  const n = parseNumber(v);
  if (!Number.isInteger(n) || n < b.min || n > b.max || (b.minExclusive && n === b.min)) {
    throw new QuantLensError('bad-argument', `${describe(flag, 'an integer', b)}; got "${v}"`);
  }
  return n;
}

/** A real-valued option within bounds; undefined when not given. */
export function numberOption(v: string | undefined, flag: string, b: Bounds): number | undefined {
  if (v === undefined) return undefined;
  const n = parseNumber(v);
  if (!Number.isFinite(n) || n < b.min || n > b.max || (b.minExclusive && n === b.min)) {
    throw new QuantLensError('bad-argument', `${describe(flag, 'a number', b)}; got "${v}"`);
  }
  return n;
}

const cores = availableParallelism();

/** The ranges of the options several commands share. */
export const BOUNDS = {
  // onnxruntime hangs creating a session with 100000 threads; more than the cores only adds contention.
  threads: { min: 1, max: Math.max(64, 4 * cores), why: `this machine has ${cores} CPU cores` },
  /** Worker threads that each use every core already. */
  jobs: { min: 1, max: Math.max(16, cores), why: 'each worker already uses every core' },
  batchSize: { min: 1, max: 4096, why: 'images or sequences per onnxruntime run' },
  maxSamples: { min: 1, max: 10_000_000 },
  seqLen: { min: 1, max: 131_072, why: 'tokens per sequence' },
  /** Activation rows kept per layer input; memory grows as rows × channels × 4 bytes per layer. */
  samples: { min: 1, max: 65_536, why: 'activation rows kept in memory per layer' },
  /** Larger than any linear layer's min(out, in) in practice; the layers' own bound is checked later. */
  rank: { min: 0, max: 65_536, why: "no layer's min(out, in) is larger" },
  block: { min: 1, max: 65_536, why: 'elements along the input dimension' },
  bins: { min: 10, max: 100_000, why: "the exact DP's time and memory grow with it" },
  budgetBits: { min: 0, max: 64, minExclusive: true, why: 'bits per weight, A·B included' },
  budgetBytes: { min: 0, max: Number.MAX_SAFE_INTEGER, minExclusive: true },
  bits: { min: 2, max: 16, why: 'integer quantization bits' },
  channelRatio: { min: 0, max: 1, minExclusive: true, why: 'extra channels as a share of the channels' },
  tolerance: { min: 0, max: 1e6, why: 'a relative difference' },
} as const satisfies Record<string, Bounds>;

/**
 * Negative numbers as option values: parseArgs reads `--rank -5` as a missing value followed by an
 * unknown option ("argument is ambiguous"). Joined as `--rank=-5`, the value reaches the bounds
 * check, whose message says what the range is.
 */
export function joinNegativeValues(argv: string[], stringOptions: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith('--') && !a.includes('=') && stringOptions.has(a.slice(2)) && next && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}
