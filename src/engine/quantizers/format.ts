/**
 * Number formats Quant Lens can fake-quantize to, and the short strings users type for them
 * (settings, CLI flags): `mxint4`, `mxint3:block=32`, `int4:g128:sym`, `mxfp4`, `nvfp4`, `fp8`, …
 *
 * Every blocked format carries its tile: the 2-D `[rows, cols]` window over a row-major matrix
 * whose elements share one scale. `-1`, or a size at least the matrix dimension, means the whole
 * dimension. For a weight W[out, in] the usual tile is `[1, n]`: n consecutive input channels of
 * one output row. Low-rank factors may want `[n, 1]` instead (see `withTile`).
 */
import { QuantLensError } from '../errors';

/** `[rows, cols]` of one scaling block; -1 = the whole dimension. */
export type Tile = readonly [rows: number, cols: number];

/**
 * MXINT: sign–magnitude integers sharing a power-of-two exponent per tile.
 * - `lqer`: the official LQER `block_fp` quantizer (ceil exponent, bit-exact; algorithms.md §2.1).
 * - `qera`: the official QERA `mxint` quantizer (floor exponent from the float32 exponent field).
 */
export interface MxintFormat {
  readonly kind: 'mxint';
  /** Element width w: 1 sign bit + (w−1) magnitude bits; 2…8. */
  readonly bits: number;
  /** Width of the shared exponent; 8 in every published configuration. */
  readonly exponentBits: number;
  readonly tile: Tile;
  readonly flavour: MxintFlavour;
}

export type MxintFlavour = 'lqer' | 'qera';

/** Uniform integers with one scale (and, when asymmetric, one zero point) per group. */
export interface IntFormat {
  readonly kind: 'int';
  /** 2…8. */
  readonly bits: number;
  /** The group; `[1, g]` is "g consecutive input channels". */
  readonly tile: Tile;
  /** true: Δ = max|x|/(2^(n−1)−1), no zero point. false: Δ = (max−min)/(2^n−1) with a zero point. */
  readonly symmetric: boolean;
  /**
   * `:fitted`: the step sizes are fitted to the layer's output error (methods/stepFitting.ts, a
   * layer-local LSQ-style fit inspired by SiLQ) instead of taken from min/max. The storage is the
   * same; `fakeQuantize` alone, having no activations, still gives the min/max (RTN) grid.
   */
  readonly fitted?: boolean;
}

/** OCP MX floating point: minifloat elements with a shared E8M0 (power-of-two) scale per tile. */
export interface MxfpFormat {
  readonly kind: 'mxfp';
  readonly element: MinifloatName;
  readonly tile: Tile;
}

/** NVIDIA NVFP4: E2M1 elements, an FP8-E4M3 scale per tile and one FP32 scale per tensor. */
export interface Nvfp4Format {
  readonly kind: 'nvfp4';
  readonly tile: Tile;
}

/** FP8 E4M3 elements with one FP32 scale per tile; the default tile is one output channel (row). */
export interface Fp8Format {
  readonly kind: 'fp8';
  readonly tile: Tile;
}

/** No quantization; `bits` is only what the original is assumed to be stored in. */
export interface FloatFormat {
  readonly kind: 'float';
  readonly bits: 16 | 32;
}

export type NumberFormat = MxintFormat | IntFormat | MxfpFormat | Nvfp4Format | Fp8Format | FloatFormat;

export type BlockedFormat = Exclude<NumberFormat, FloatFormat>;

export type MinifloatName = 'e2m1' | 'e2m3' | 'e3m2' | 'e4m3' | 'e5m2';

export const MINIFLOAT_NAMES: readonly MinifloatName[] = ['e2m1', 'e2m3', 'e3m2', 'e4m3', 'e5m2'];

/** Tile a format gets when its string names none. */
export const DEFAULT_TILES = {
  /** LQER paper: 16 consecutive input channels. */
  mxintLqer: [1, 16],
  /** QERA default `block_size=32` along the last axis. */
  mxintQera: [1, 32],
  /** GPTQ/AWQ-style group of 128 input channels. */
  int: [1, 128],
  /** OCP MX v1.0 block size. */
  mxfp: [1, 32],
  /** NVFP4 micro-block. */
  nvfp4: [1, 16],
  /** One scale per output channel (row of W[out, in]). */
  fp8: [1, -1],
} as const satisfies Record<string, Tile>;

export const MIN_ELEMENT_BITS = 2;
export const MAX_ELEMENT_BITS = 8;

/** The forms `parseFormat` accepts, for error messages and help text. */
export const FORMAT_SYNTAX_HELP = [
  'mxint<2-8>[:block=<n>|<r>x<c>][:exp=<bits>][:lqer|:qera]   e.g. mxint4, mxint3:block=32, mxint8:block=16x1',
  'int<2-8>[:g<n>|:g=<n>|:channel][:sym|:asym][:fitted]       e.g. int4:g128, int4:g128:sym, int4:g128:fitted',
  'mxfp4 | mxfp6[:e2m3|:e3m2] | mxfp8[:e4m3|:e5m2] [:block=<n>|<r>x<c>]',
  'nvfp4[:block=<n>|<r>x<c>]',
  'fp8[:block=<n>|<r>x<c>]   (E4M3, one scale per output channel by default)',
  'fp16 | bf16 | fp32 | float | none   (no quantization)',
].join('\n');

function badFormat(text: string, why: string): QuantLensError {
  return new QuantLensError(
    'bad-argument',
    `unknown number format "${text}": ${why}. Valid forms:\n${FORMAT_SYNTAX_HELP}`,
  );
}

/** Parses one tile size: a positive integer or -1. */
function parseTileSize(text: string, source: string): number {
  if (!/^(-1|[1-9]\d*)$/.test(text))
    throw badFormat(source, `"${text}" is not a block size (a positive integer or -1)`);
  return Number(text);
}

/** `16` → [1, 16] (along the last dimension); `16x1` or `16,1` → [16, 1]. */
function parseTile(text: string, source: string): Tile {
  const parts = text.split(/[x×,]/);
  if (parts.length === 1) return [1, parseTileSize(parts[0] ?? '', source)];
  if (parts.length === 2) return [parseTileSize(parts[0] ?? '', source), parseTileSize(parts[1] ?? '', source)];
  throw badFormat(source, `"${text}" is not a block shape`);
}

function parseElementBits(digits: string, source: string): number {
  const bits = Number(digits);
  if (!Number.isInteger(bits) || bits < MIN_ELEMENT_BITS || bits > MAX_ELEMENT_BITS) {
    throw badFormat(source, `element width must be ${MIN_ELEMENT_BITS}…${MAX_ELEMENT_BITS} bits`);
  }
  return bits;
}

/** The `key=value` or bare-word options after the base name, in order. */
interface FormatOption {
  readonly key: string;
  readonly value: string | undefined;
}

function splitOptions(parts: readonly string[]): FormatOption[] {
  return parts.map((part) => {
    const eq = part.indexOf('=');
    return eq < 0 ? { key: part, value: undefined } : { key: part.slice(0, eq), value: part.slice(eq + 1) };
  });
}

function requireValue(option: FormatOption, source: string): string {
  if (option.value === undefined || option.value === '')
    throw badFormat(source, `option "${option.key}" needs a value`);
  return option.value;
}

function parseMxintFormat(bits: number, options: FormatOption[], source: string): MxintFormat {
  let tile: Tile | undefined;
  let exponentBits = 8;
  let flavour: MxintFlavour = 'lqer';
  for (const option of options) {
    if (option.key === 'block') tile = parseTile(requireValue(option, source), source);
    else if (option.key === 'exp') {
      exponentBits = Number(requireValue(option, source));
      if (!Number.isInteger(exponentBits) || exponentBits < 2 || exponentBits > 8) {
        throw badFormat(source, 'the shared exponent width (exp=) must be 2…8 bits');
      }
    } else if ((option.key === 'lqer' || option.key === 'qera') && option.value === undefined) flavour = option.key;
    else throw badFormat(source, `"${option.key}" is not an MXINT option`);
  }
  if (flavour === 'qera' && exponentBits !== 8) {
    throw badFormat(
      source,
      'the QERA flavour reads the float32 exponent field, so its shared exponent is always 8 bits',
    );
  }
  tile ??= flavour === 'lqer' ? DEFAULT_TILES.mxintLqer : DEFAULT_TILES.mxintQera;
  return { kind: 'mxint', bits, exponentBits, tile, flavour };
}

function parseIntFormat(bits: number, options: FormatOption[], source: string): IntFormat {
  let tile: Tile = DEFAULT_TILES.int;
  let symmetric = false;
  let fitted = false;
  for (const option of options) {
    const shortGroup = /^g(-1|\d+)$/.exec(option.key);
    if (shortGroup && option.value === undefined) tile = [1, parseTileSize(shortGroup[1] ?? '', source)];
    else if (option.key === 'g' || option.key === 'group')
      tile = [1, parseTileSize(requireValue(option, source), source)];
    else if (option.key === 'block') tile = parseTile(requireValue(option, source), source);
    else if (option.key === 'channel' && option.value === undefined) tile = [1, -1];
    else if (option.key === 'sym' && option.value === undefined) symmetric = true;
    else if (option.key === 'asym' && option.value === undefined) symmetric = false;
    else if (option.key === 'fitted' && option.value === undefined) fitted = true;
    else throw badFormat(source, `"${option.key}" is not an INT option`);
  }
  return fitted ? { kind: 'int', bits, tile, symmetric, fitted } : { kind: 'int', bits, tile, symmetric };
}

const MXFP_ELEMENTS: Readonly<Record<string, readonly MinifloatName[]>> = {
  // The first entry is the default: OCP lists both variants for MXFP6/MXFP8; E2M3 and E4M3 are
  // the ones inference stacks use for weights.
  '4': ['e2m1'],
  '6': ['e2m3', 'e3m2'],
  '8': ['e4m3', 'e5m2'],
};

/** Element width of an MXFP element type: MXFP4, MXFP6 or MXFP8. */
function mxfpWidth(element: MinifloatName): number {
  return element === 'e2m1' ? 4 : element === 'e2m3' || element === 'e3m2' ? 6 : 8;
}

function parseMxfpFormat(width: string, options: FormatOption[], source: string): MxfpFormat {
  const allowed = MXFP_ELEMENTS[width];
  if (!allowed) throw badFormat(source, 'MXFP comes in 4, 6 and 8 bits');
  let element = allowed[0] as MinifloatName;
  let tile: Tile = DEFAULT_TILES.mxfp;
  for (const option of options) {
    if (option.key === 'block') tile = parseTile(requireValue(option, source), source);
    else if (option.value === undefined && (allowed as readonly string[]).includes(option.key)) {
      element = option.key as MinifloatName;
    } else throw badFormat(source, `"${option.key}" is not an option of mxfp${width}`);
  }
  return { kind: 'mxfp', element, tile };
}

function parseScaledFloatFormat<K extends 'nvfp4' | 'fp8'>(
  kind: K,
  defaultTile: Tile,
  options: FormatOption[],
  source: string,
): { kind: K; tile: Tile } {
  let tile = defaultTile;
  for (const option of options) {
    if (option.key === 'block') tile = parseTile(requireValue(option, source), source);
    else if (kind === 'fp8' && option.key === 'channel' && option.value === undefined) tile = [1, -1];
    else throw badFormat(source, `"${option.key}" is not an option of ${kind}`);
  }
  return { kind, tile };
}

const FLOAT_NAMES: Readonly<Record<string, 16 | 32>> = {
  // Checkpoints are stored in half precision, so "no quantization" costs 16 bits per weight.
  float: 16,
  none: 16,
  fp16: 16,
  bf16: 16,
  float16: 16,
  bfloat16: 16,
  fp32: 32,
  float32: 32,
};

/**
 * Parses a format string (case-insensitive, options separated by `:`).
 * Throws QuantLensError('bad-argument') listing the valid forms for anything else.
 */
export function parseFormat(text: string): NumberFormat {
  const source = text.trim().toLowerCase();
  const [base = '', ...rest] = source.split(':');
  const options = splitOptions(rest);
  if (options.some((o) => o.key === '')) throw badFormat(text, 'empty option');

  const floatBits = FLOAT_NAMES[base];
  if (floatBits !== undefined) {
    if (options.length > 0) throw badFormat(text, 'unquantized formats take no options');
    return { kind: 'float', bits: floatBits };
  }
  let match: RegExpExecArray | null;
  if ((match = /^mxint(\d+)$/.exec(base)))
    return parseMxintFormat(parseElementBits(match[1] ?? '', text), options, text);
  if ((match = /^int(\d+)$/.exec(base))) return parseIntFormat(parseElementBits(match[1] ?? '', text), options, text);
  if ((match = /^mxfp(\d+)$/.exec(base))) return parseMxfpFormat(match[1] ?? '', options, text);
  if (base === 'nvfp4') return parseScaledFloatFormat('nvfp4', DEFAULT_TILES.nvfp4, options, text);
  if (base === 'fp8' || base === 'fp8-e4m3' || base === 'fp8-e4m3-channel' || base === 'fp8e4m3') {
    return parseScaledFloatFormat('fp8', DEFAULT_TILES.fp8, options, text);
  }
  throw badFormat(text, base === '' ? 'empty format' : `"${base}" is not a format name`);
}

function sameTile(a: Tile, b: Tile): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

/** `[1, 16]` → `16`; anything else → `16x1`. Inverse of parseTile. */
function tileToString(tile: Tile): string {
  return tile[0] === 1 ? String(tile[1]) : `${tile[0]}x${tile[1]}`;
}

function blockOption(tile: Tile, defaultTile: Tile): string {
  return sameTile(tile, defaultTile) ? '' : `:block=${tileToString(tile)}`;
}

/** Canonical string for a format; `parseFormat(formatToString(f))` gives back an equal format. */
export function formatToString(format: NumberFormat): string {
  switch (format.kind) {
    case 'mxint': {
      const defaultTile = format.flavour === 'lqer' ? DEFAULT_TILES.mxintLqer : DEFAULT_TILES.mxintQera;
      const exp = format.exponentBits === 8 ? '' : `:exp=${format.exponentBits}`;
      const flavour = format.flavour === 'lqer' ? '' : ':qera';
      return `mxint${format.bits}${blockOption(format.tile, defaultTile)}${exp}${flavour}`;
    }
    case 'int': {
      const group =
        format.tile[0] !== 1
          ? `:block=${tileToString(format.tile)}`
          : format.tile[1] === -1
            ? ':channel'
            : `:g${format.tile[1]}`;
      return `int${format.bits}${group}${format.symmetric ? ':sym' : ''}${format.fitted ? ':fitted' : ''}`;
    }
    case 'mxfp': {
      const width = mxfpWidth(format.element);
      const isDefault = MXFP_ELEMENTS[String(width)]?.[0] === format.element;
      return `mxfp${width}${isDefault ? '' : `:${format.element}`}${blockOption(format.tile, DEFAULT_TILES.mxfp)}`;
    }
    case 'nvfp4':
      return `nvfp4${blockOption(format.tile, DEFAULT_TILES.nvfp4)}`;
    case 'fp8':
      return `fp8${blockOption(format.tile, DEFAULT_TILES.fp8)}`;
    case 'float':
      return format.bits === 16 ? 'fp16' : 'fp32';
  }
}

function tileLabel(tile: Tile): string {
  if (tile[0] === 1) return tile[1] === -1 ? 'per row' : `block ${tile[1]}`;
  const size = (n: number): string => (n === -1 ? 'all' : String(n));
  return `block ${size(tile[0])}×${size(tile[1])}`;
}

/** Short human label, e.g. "MXINT4 (block 16)", "INT4 g128 asym", "NVFP4", "FP8 E4M3 per channel". */
export function formatLabel(format: NumberFormat): string {
  switch (format.kind) {
    case 'mxint': {
      const extras = [tileLabel(format.tile)];
      if (format.exponentBits !== 8) extras.push(`${format.exponentBits}-bit exp`);
      if (format.flavour === 'qera') extras.push('QERA rounding');
      return `MXINT${format.bits} (${extras.join(', ')})`;
    }
    case 'int': {
      const group =
        format.tile[0] !== 1 ? tileLabel(format.tile) : format.tile[1] === -1 ? 'per channel' : `g${format.tile[1]}`;
      return `INT${format.bits} ${group} ${format.symmetric ? 'sym' : 'asym'}${format.fitted ? ', fitted steps' : ''}`;
    }
    case 'mxfp': {
      const base =
        formatToString({ ...format, tile: DEFAULT_TILES.mxfp })
          .split(':')[0]
          ?.toUpperCase() ?? 'MXFP';
      const tile = sameTile(format.tile, DEFAULT_TILES.mxfp) ? '' : `, ${tileLabel(format.tile)}`;
      return `${base} (${format.element.toUpperCase()}${tile})`;
    }
    case 'nvfp4':
      return sameTile(format.tile, DEFAULT_TILES.nvfp4) ? 'NVFP4' : `NVFP4 (${tileLabel(format.tile)})`;
    case 'fp8':
      return sameTile(format.tile, DEFAULT_TILES.fp8) ? 'FP8 E4M3 per channel' : `FP8 E4M3 (${tileLabel(format.tile)})`;
    case 'float':
      return `FP${format.bits} (unquantized)`;
  }
}

/** The same format with another tile, e.g. `[16, 1]` for the other blocking of low-rank factors. */
export function withTile<F extends NumberFormat>(format: F, tile: Tile): F {
  if (format.kind === 'float') return format;
  for (const size of tile) {
    if (!(size === -1 || (Number.isInteger(size) && size >= 1))) {
      throw new QuantLensError('bad-argument', `block size ${size} is not a positive integer or -1`);
    }
  }
  return { ...format, tile: [tile[0], tile[1]] };
}

/** The tile of a blocked format; undefined for unquantized formats. */
export function tileOf(format: NumberFormat): Tile | undefined {
  return format.kind === 'float' ? undefined : format.tile;
}
