/**
 * Plain-data types of the QLLM reassembly analysis (qllm.ts). Kept apart from the analysis, which
 * pulls in the linear-algebra kernels, so that the webviews can import the results' shape.
 */

export interface ReassemblyConsumer {
  name: string;
  /** [out, C], row-major. */
  weight: Float32Array;
  out: number;
}

export interface ReassemblySiteInput {
  site: string;
  consumers: ReassemblyConsumer[];
  channels: number;
  /** Activation rows X [rows, channels] (act_samples). */
  samples: Float32Array;
  rows: number;
  /** act_mean_abs for the L²QER reference; computed from the samples when absent. */
  meanAbs?: Float32Array;
}

export interface ReassemblyOptions {
  weightBits?: number;
  actBits?: number;
  /** Extra channels allowed, as a share of C (QLLM's scripts: 0.2). */
  channelRatio?: number;
  /** Rank of the L²QER reference (default 32) and its factor format (default mxint8). */
  rank?: number;
  factorFormat?: string;
  signal?: AbortSignal;
}

/** One output channel after reassembly: x' = Σ α_m·x[c_m], W' = Σ W[:, c_m] (c_m original channels). */
export interface ReassembledChannel {
  members: number[];
  alpha: number[];
}

export interface SiteErrors {
  /** mean over tokens and outputs of (y − ŷ)² with the activation and weight quantizers. */
  quantizedMse: number;
  /** The same without activation quantization (weights only). */
  weightOnlyMse: number;
}

export interface ActivationRange {
  /** max |x| over the sample. */
  maxAbs: number;
  /** Mean over tokens of max_c x − min_c x (what sets the per-token step). */
  meanTokenRange: number;
}

export interface ReassemblyResult {
  site: string;
  consumers: string[];
  channels: number;
  rows: number;
  weightBits: number;
  actBits: number;
  channelRatio: number;
  /** Per-channel max |x| over the sample (before reassembly). */
  channelMax: Float32Array;
  /** θ chosen by the search, or null when no reassembly is applied. */
  threshold: number | null;
  /** Channels split at θ and into how many parts. */
  splits: { channel: number; parts: number }[];
  extraChannels: number;
  /** Merged pairs (original channel indices) of the applied assembly. */
  merges: { src: number; dst: number }[];
  search: { theta: number[]; extraChannels: number[]; mse: number[] };
  /** mean(y²) of the float output, to read the MSEs relatively. */
  outputPower: number;
  before: { range: ActivationRange } & SiteErrors;
  after: {
    range: ActivationRange;
    /** Per-channel max |x'| after reassembly (length = channels after). */
    channelMax: Float32Array;
    /** MSE of the reassembled float output (the assembly's approximation alone). */
    floatMse: number;
  } & SiteErrors;
  l2qer: { rank: number; factorFormat: string } & SiteErrors;
  reassembledL2qer: SiteErrors;
  /**
   * Whether the applied reassembly lowers the site's quantized MSE. QLLM as coded never compares
   * with "no reassembly" (its best loss starts at 1e5); a guard that keeps the site as it is when
   * this is false is our suggestion, not QLLM's.
   */
  helps: boolean;
  notes: string[];
}

export interface ReassemblySite {
  /** A label: the shared input's name, or the layers' common name with {q,k,v} / {gate,up}. */
  site: string;
  layers: string[];
  channels: number;
}
