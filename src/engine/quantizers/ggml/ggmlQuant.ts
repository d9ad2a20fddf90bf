/**
 * llama.cpp's weight types as Quant Lens formats: which ggml type stores a [rows, cols] weight
 * (with llama-quantize's fall-back when a row does not split into the type's blocks), the exact
 * bytes ggml writes for it, and W_q decoded from those bytes exactly as ggml decodes them.
 */
import { QuantLensError } from '../../errors';
import { floatToHalf } from '../../readers/dtypes';
import { GGML_TYPES, type GgmlType } from '../../readers/gguf/ggmlTypes';
import { quantizeRowIq4Nl } from './iq4nl';
import { quantizeRowQ2_K, quantizeRowQ3_K, quantizeRowQ4_K, quantizeRowQ5_K, quantizeRowQ6_K } from './kquants';
import { quantizeRowQ4_0, quantizeRowQ4_1, quantizeRowQ5_0, quantizeRowQ5_1, quantizeRowQ8_0 } from './legacy';

/** The types a user can choose (llama-quantize's `--tensor-type` names, lower case). */
export const GGML_WEIGHT_TYPES = [
  'q4_0',
  'q4_1',
  'q5_0',
  'q5_1',
  'q8_0',
  'q2_k',
  'q3_k',
  'q4_k',
  'q5_k',
  'q6_k',
] as const;
export type GgmlWeightType = (typeof GGML_WEIGHT_TYPES)[number];

/** What a weight can end up stored as: a chosen type, IQ4_NL or F16 after a fall-back. */
export type GgmlStoredType = GgmlWeightType | 'iq4_nl' | 'f16';

type RowQuantizer = (
  x: Float32Array,
  xo: number,
  n: number,
  out: Uint8Array,
  oo: number,
  importance: Float32Array | null,
) => void;

interface StoredTypeInfo {
  /** ggml_type id (ggml.h). */
  readonly id: number;
  /** ggml's name, as llama.cpp prints it and GGUF readers show it. */
  readonly ggmlName: string;
  readonly quantizeRow: RowQuantizer | null;
  /** Whether ggml's quantizer for the type uses an importance matrix when given one. */
  readonly usesImportance: boolean;
}

const STORED: Record<GgmlStoredType, StoredTypeInfo> = {
  q4_0: { id: 2, ggmlName: 'Q4_0', quantizeRow: quantizeRowQ4_0, usesImportance: true },
  q4_1: { id: 3, ggmlName: 'Q4_1', quantizeRow: quantizeRowQ4_1, usesImportance: true },
  q5_0: { id: 6, ggmlName: 'Q5_0', quantizeRow: quantizeRowQ5_0, usesImportance: true },
  q5_1: { id: 7, ggmlName: 'Q5_1', quantizeRow: quantizeRowQ5_1, usesImportance: true },
  q8_0: {
    id: 8,
    ggmlName: 'Q8_0',
    quantizeRow: (x, xo, n, out, oo) => quantizeRowQ8_0(x, xo, n, out, oo),
    usesImportance: false,
  },
  q2_k: { id: 10, ggmlName: 'Q2_K', quantizeRow: quantizeRowQ2_K, usesImportance: true },
  q3_k: { id: 11, ggmlName: 'Q3_K', quantizeRow: quantizeRowQ3_K, usesImportance: true },
  q4_k: { id: 12, ggmlName: 'Q4_K', quantizeRow: quantizeRowQ4_K, usesImportance: true },
  q5_k: { id: 13, ggmlName: 'Q5_K', quantizeRow: quantizeRowQ5_K, usesImportance: true },
  q6_k: { id: 14, ggmlName: 'Q6_K', quantizeRow: quantizeRowQ6_K, usesImportance: true },
  iq4_nl: { id: 20, ggmlName: 'IQ4_NL', quantizeRow: quantizeRowIq4Nl, usesImportance: true },
  f16: { id: 1, ggmlName: 'F16', quantizeRow: null, usesImportance: false },
};

/** llama-quantize's first fall-back for a K-quant whose rows are not a multiple of 256. */
const K_FALLBACK: Partial<Record<GgmlWeightType, GgmlStoredType>> = {
  q2_k: 'iq4_nl',
  q3_k: 'iq4_nl',
  q4_k: 'q5_0',
  q5_k: 'q5_1',
  q6_k: 'q8_0',
};

export function ggmlTypeInfo(t: GgmlStoredType): StoredTypeInfo & { block: GgmlType } {
  const info = STORED[t];
  const block = GGML_TYPES[info.id];
  if (!block) throw new Error(`ggml type ${info.id} missing from the type table`);
  return { ...info, block };
}

export function isGgmlWeightType(s: string): s is GgmlWeightType {
  return (GGML_WEIGHT_TYPES as readonly string[]).includes(s);
}

/** Elements per block of a chosen type (32 or 256). */
export function ggmlBlockSize(t: GgmlWeightType): number {
  return ggmlTypeInfo(t).block.blockElements;
}

/** How one weight is stored: the chosen type, or what llama-quantize falls back to and why. */
export interface GgmlPlacement {
  readonly requested: GgmlWeightType;
  readonly stored: GgmlStoredType;
  /** Why the stored type differs from the requested one; null when it does not. */
  readonly fallback: string | null;
}

/**
 * The type a row of `cols` values gets, as llama-quantize decides it (llama-quant.cpp,
 * llama_tensor_get_type): a K-quant whose rows do not split into 256 falls back to IQ4_NL (Q2_K,
 * Q3_K), Q5_0 (Q4_K), Q5_1 (Q5_K) or Q8_0 (Q6_K), and to F16 when even 32 does not divide the row.
 * llama-quantize stops with "Unsupported tensor size" for a legacy type whose rows do not split
 * into 32; Quant Lens keeps such a weight in F16 and says so.
 */
export function placeGgml(requested: GgmlWeightType, cols: number): GgmlPlacement {
  const blockOf = (t: GgmlStoredType) => ggmlTypeInfo(t).block.blockElements;
  const req = STORED[requested].ggmlName;
  if (cols % blockOf(requested) === 0) return { requested, stored: requested, fallback: null };
  const next = K_FALLBACK[requested];
  if (next && cols % blockOf(next) === 0) {
    return {
      requested,
      stored: next,
      fallback: `rows of ${cols} do not split into ${req}'s blocks of ${blockOf(requested)}: stored as ${STORED[next].ggmlName}, as llama-quantize falls back`,
    };
  }
  if (next) {
    return {
      requested,
      stored: 'f16',
      fallback: `rows of ${cols} split neither into ${req}'s blocks of ${blockOf(requested)} nor into ${STORED[next].ggmlName}'s of 32: stored as F16, as llama-quantize falls back`,
    };
  }
  return {
    requested,
    stored: 'f16',
    fallback: `rows of ${cols} do not split into ${req}'s blocks of 32 (llama-quantize stops with "Unsupported tensor size"): kept in F16`,
  };
}

/** Bits of the quantized levels alone (the rest of a block is its scales and mins). */
const ELEMENT_BITS: Record<GgmlStoredType, number> = {
  q4_0: 4,
  q4_1: 4,
  q5_0: 5,
  q5_1: 5,
  q8_0: 8,
  q2_k: 2,
  q3_k: 3,
  q4_k: 4,
  q5_k: 5,
  q6_k: 6,
  iq4_nl: 4,
  f16: 16,
};

export function ggmlElementBits(t: GgmlStoredType): number {
  return ELEMENT_BITS[t];
}

/** Exact storage bits per weight of a stored type: block bytes · 8 / block elements. */
export function ggmlBitsPerWeight(t: GgmlStoredType): number {
  const b = ggmlTypeInfo(t).block;
  return (b.blockBytes * 8) / b.blockElements;
}

/**
 * Quantizes a row-major [rows, cols] matrix to `stored` (cols must split into its blocks), row by
 * row as ggml does; `importance` is the per-column weight (llama.cpp's imatrix: mean x²) or null
 * for ggml's reference quantizers. F16 is the IEEE half of each value.
 */
export function quantizeGgml(
  data: Float32Array,
  rows: number,
  cols: number,
  stored: GgmlStoredType,
  importance: Float32Array | null,
): Uint8Array {
  const info = ggmlTypeInfo(stored);
  const { blockElements, blockBytes } = info.block;
  if (cols % blockElements !== 0) {
    throw new QuantLensError(
      'bad-argument',
      `${info.ggmlName} needs rows that are a multiple of ${blockElements}, got ${cols}`,
    );
  }
  if (importance && importance.length !== cols) {
    throw new QuantLensError('bad-argument', `importance has ${importance.length} values for rows of ${cols}`);
  }
  const rowBytes = (cols / blockElements) * blockBytes;
  const out = new Uint8Array(rows * rowBytes);
  const quantizeRow = info.quantizeRow;
  if (!quantizeRow) {
    const dv = new DataView(out.buffer);
    for (let i = 0; i < data.length; i++) dv.setUint16(2 * i, floatToHalf(data[i] as number), true);
    return out;
  }
  for (let r = 0; r < rows; r++) quantizeRow(data, r * cols, cols, out, r * rowBytes, importance);
  return out;
}

/** The float32 values ggml's dequantize_row_* gives for `bytes` of `stored` type. */
export function dequantizeGgml(
  bytes: Uint8Array,
  stored: GgmlStoredType,
  count: number,
  out?: Float32Array,
): Float32Array {
  const { block } = ggmlTypeInfo(stored);
  const dequantize = block.dequantize;
  if (!dequantize) throw new Error(`no dequantizer for ${block.name}`);
  const result = out ?? new Float32Array(count);
  dequantize(bytes, result, 0, count / block.blockElements);
  return result;
}

/**
 * W_q of a [rows, cols] matrix in a llama.cpp format: the bytes ggml writes for the type the rows
 * are stored in (after fall-back), decoded as ggml decodes them.
 */
export function fakeQuantizeGgml(
  data: Float32Array,
  rows: number,
  cols: number,
  format: { type: GgmlWeightType; imatrix: boolean },
  out: Float32Array,
  importance: Float32Array | null,
): void {
  if (format.imatrix && !importance) {
    throw new QuantLensError(
      'needs-calibration',
      `${format.type}:imatrix needs the importance of each input channel (act_rms from calibration)`,
    );
  }
  const { stored } = placeGgml(format.type, cols);
  const bytes = quantizeGgml(data, rows, cols, stored, format.imatrix ? importance : null);
  dequantizeGgml(bytes, stored, rows * cols, out);
}

/**
 * How a weight in a llama.cpp format is stored, for every place that reports it (analysis,
 * exports, the UI): the type asked for, the type written, why they differ, and whether the
 * importance weighting from calibration was used.
 */
export interface GgmlStorage {
  readonly requested: GgmlWeightType;
  /** ggml's name of the type written: "Q4_K", "Q5_0", "IQ4_NL", "F16". */
  readonly stored: string;
  readonly bitsPerWeight: number;
  readonly fallback: string | null;
  readonly imatrix: boolean;
}

export function ggmlStorage(format: { type: GgmlWeightType; imatrix: boolean }, cols: number): GgmlStorage {
  const p = placeGgml(format.type, cols);
  return {
    requested: format.type,
    stored: STORED[p.stored].ggmlName,
    bitsPerWeight: ggmlBitsPerWeight(p.stored),
    fallback: p.fallback,
    imatrix: format.imatrix && STORED[p.stored].usesImportance,
  };
}
