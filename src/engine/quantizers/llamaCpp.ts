/**
 * llama.cpp's weight types (Q4_0 … Q8_0, Q2_K … Q6_K) as a format family, quantized byte for byte
 * as ggml does (ggml/ holds the quantizers). The blocks are fixed by each type: 32 consecutive
 * input channels, or super-blocks of 256. A row that does not split into them is stored as
 * llama-quantize falls back (ggml/ggmlQuant.ts, placeGgml), and storage and W_q follow the type
 * actually stored.
 *
 *   q4_k            ggml's reference quantizer (llama-quantize without --imatrix)
 *   q4_k:imatrix    ggml's importance-weighted quantizer, the importance matrix being the
 *                   per-column mean of x² from calibration (act_rms²), as llama-imatrix computes it
 */
import { FormatSyntaxError, isFlag, type FormatFamily, type Tile } from './formatFamily';
import {
  GGML_WEIGHT_TYPES,
  fakeQuantizeGgml,
  ggmlBlockSize,
  ggmlElementBits,
  ggmlTypeInfo,
  isGgmlWeightType,
  placeGgml,
  type GgmlWeightType,
} from './ggml/ggmlQuant';

export interface GgmlFormat {
  readonly kind: 'ggml';
  readonly type: GgmlWeightType;
  /** ggml's importance-weighted quantizers, with act_rms² from calibration as the imatrix. */
  readonly imatrix: boolean;
  /** [1, 32] or [1, 256]: fixed by the type. */
  readonly tile: Tile;
}

/** The settings offer the K-quants first: they are what llama.cpp users pick today. */
const CHOICES: readonly GgmlWeightType[] = [
  'q2_k',
  'q3_k',
  'q4_k',
  'q5_k',
  'q6_k',
  'q4_0',
  'q4_1',
  'q5_0',
  'q5_1',
  'q8_0',
];

export const ggmlFamily: FormatFamily<GgmlFormat> = {
  kind: 'ggml',
  syntax: `${GGML_WEIGHT_TYPES.join(' | ')}[:imatrix]   (llama.cpp's types, byte-exact with ggml; :imatrix weighs by act_rms²)`,
  summary: 'q2_k…q6_k, q4_0…q8_0[:imatrix]',
  weightChoices: CHOICES,
  factorChoices: [],
  tiling: 'fixed',
  parse(base, options) {
    if (!isGgmlWeightType(base)) return undefined;
    let imatrix = false;
    for (const option of options) {
      if (isFlag(option, 'imatrix')) imatrix = true;
      else
        throw new FormatSyntaxError(
          `"${option.key}" is not an option of ${base} (its blocks are fixed; :imatrix is its one option)`,
        );
    }
    return { kind: 'ggml', type: base, imatrix, tile: [1, ggmlBlockSize(base)] };
  },
  print: (f) => `${f.type}${f.imatrix ? ':imatrix' : ''}`,
  label: (f) => `${f.type.toUpperCase()} (llama.cpp${f.imatrix ? ', imatrix' : ''})`,
  defaultTile: (f) => [1, ggmlBlockSize(f.type)],
  storage(f, rows, cols) {
    // Whole ggml blocks of the type the rows are stored in; the block bytes beyond the levels are
    // its scales and mins.
    const elements = rows * cols;
    const stored = placeGgml(f.type, cols).stored;
    const { blockElements, blockBytes } = ggmlTypeInfo(stored).block;
    const totalBits = stored === 'f16' ? elements * 16 : (elements / blockElements) * blockBytes * 8;
    const elementBits = ggmlElementBits(stored) * elements;
    return {
      elements,
      elementBits,
      metadataBits: totalBits - elementBits,
      totalBits,
      bitsPerElement: totalBits / elements,
    };
  },
  fakeQuantize(data, rows, cols, f, out, importance) {
    fakeQuantizeGgml(data, rows, cols, f, out, importance ?? null);
  },
};
