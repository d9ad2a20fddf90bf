/** Options shared by `inspect` and `export`: which layers, which method, formats and rank. */
import { QuantLensError } from '../engine/errors';
import { METHOD_NAMES, defaultMethod, isMethodName, type MethodName } from '../engine/methods/methods';
import { FORMAT_SUMMARY, formatToString, parseFormat, takesBlockSize, withTile } from '../engine/quantizers';
import type { AnalysisSettings, FactorTiling } from '../engine/methods/analyzeLayer';
import type { LinearLayer } from '../engine/readers/checkpoint';
import { BOUNDS, intOption } from './numbers';

export const analysisOptionSpec = {
  layer: { type: 'string', multiple: true },
  all: { type: 'boolean' },
  format: { type: 'string' },
  block: { type: 'string' },
  rank: { type: 'string' },
  'max-rank': { type: 'string' },
  method: { type: 'string' },
  'ab-format': { type: 'string' },
  'ab-tiling': { type: 'string' },
  calib: { type: 'string' },
} as const;

export const analysisOptionsHelp = `  --layer <name|/regex/>  layers to process (repeatable; default: the layers the papers quantize)
  --all                   include layers not quantized by default (embeddings, lm_head, …)
  --format <fmt>          weight format (default mxint4): ${FORMAT_SUMMARY}
  --block <n>             block / group size of the weight format along the input dimension
  --rank <k>              rank of the correction A·B (default 32)
  --method <m>            ${METHOD_NAMES.join(' | ')} (default: l2qer with --calib, else lqer)
  --ab-format <fmt>       format of A and B (default mxint8)
  --ab-tiling <t>         last-dim (paper: blocks along each factor's last dimension) | first-dim
  --calib <stats>         calibration statistics (.safetensors from \`quant-lens calibrate\`)`;

export interface AnalysisOptionValues {
  layer?: string[];
  all?: boolean;
  format?: string;
  block?: string;
  rank?: string;
  'max-rank'?: string;
  method?: string;
  'ab-format'?: string;
  'ab-tiling'?: string;
  calib?: string;
}

export function resolveSettings(v: AnalysisOptionValues): { settings: AnalysisSettings; rank: number } {
  const methodName = v.method ?? defaultMethod(Boolean(v.calib));
  if (!isMethodName(methodName)) {
    throw new QuantLensError('bad-argument', `--method must be one of ${METHOD_NAMES.join(', ')}; got "${methodName}"`);
  }
  const method: MethodName = methodName;
  let wf = parseFormat(v.format ?? 'mxint4');
  if (v.block !== undefined) {
    const block = intOption(v.block, '--block', BOUNDS.block)!;
    if (!takesBlockSize(wf)) throw new QuantLensError('bad-argument', `--block does not apply to ${v.format}`);
    wf = withTile(wf, [1, block]);
  }
  const tiling = (v['ab-tiling'] ?? 'last-dim') as FactorTiling;
  if (tiling !== 'last-dim' && tiling !== 'first-dim') {
    throw new QuantLensError('bad-argument', `--ab-tiling must be last-dim or first-dim, got "${tiling}"`);
  }
  const factorFormat = formatToString(parseFormat(v['ab-format'] ?? 'mxint8'));
  const rank = intOption(v.rank, '--rank', BOUNDS.rank) ?? 32;
  const maxRank = intOption(v['max-rank'], '--max-rank', BOUNDS.rank) ?? rank;
  if (maxRank < rank)
    throw new QuantLensError('bad-argument', `--max-rank (${maxRank}) must be at least --rank (${rank})`);
  return {
    settings: { method, weightFormat: formatToString(wf), factorFormat, factorTiling: tiling, maxRank },
    rank,
  };
}

export function selectLayers(
  layers: LinearLayer[],
  patterns: string[] | undefined,
  all: boolean | undefined,
): LinearLayer[] {
  if (!patterns || patterns.length === 0) return layers.filter((l) => all || l.quantizedByDefault);
  const matchers = patterns.map((p) => {
    const m = /^\/(.*)\/([a-z]*)$/.exec(p);
    if (!m) return (name: string) => name === p;
    let re: RegExp;
    try {
      re = new RegExp(m[1]!, m[2]);
    } catch (e) {
      throw new QuantLensError(
        'bad-argument',
        `--layer ${p} is not a valid regular expression: ${(e as Error).message}`,
      );
    }
    return (name: string) => re.test(name);
  });
  const picked = layers.filter((l) => matchers.some((f) => f(l.name)));
  if (picked.length === 0) {
    throw new QuantLensError(
      'bad-argument',
      `no linear layer matches ${patterns.join(', ')} (see \`quant-lens layers\`)`,
    );
  }
  return picked;
}

/**
 * A uniform rank is capped at each layer's min(out, in) (full rank there); one above every selected
 * layer's is a typo, refused rather than labelled with a rank no layer has. Returns the layers where
 * the rank is capped, for a note.
 */
export function cappedRankLayers(layers: readonly LinearLayer[], rank: number, flag = '--rank'): LinearLayer[] {
  if (layers.length === 0) return [];
  const full = (l: LinearLayer) => Math.min(l.shape[0], l.shape[1]);
  const largest = Math.max(...layers.map(full));
  if (rank > largest) {
    throw new QuantLensError(
      'bad-argument',
      `${flag} ${rank} is above the rank of every selected layer (the largest min(out, in) is ${largest})`,
    );
  }
  return layers.filter((l) => rank > full(l));
}

/** The note for layers whose rank is capped. */
export function cappedRankNote(capped: readonly LinearLayer[], rank: number): string | null {
  if (capped.length === 0) return null;
  const shown = capped
    .slice(0, 3)
    .map((l) => `${l.name} (${Math.min(l.shape[0], l.shape[1])})`)
    .join(', ');
  return `rank ${rank} is capped at min(out, in) for ${capped.length} layer${capped.length === 1 ? '' : 's'}: ${shown}${capped.length > 3 ? ', …' : ''}`;
}
