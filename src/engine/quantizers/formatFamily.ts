/**
 * What one number format (or a family of them: MXINT2…8 are one family) has to provide to be
 * usable everywhere: the CLI, the settings UI, storage accounting and fake quantization. A format
 * file (`mxint.ts`, `intGroup.ts`, …) exports its parsed type and one `FormatFamily` value;
 * `formats.ts` lists the families and derives `NumberFormat` from that list. Adding a format is
 * that one file plus one entry in the list (see CONTRIBUTING.md, "A new number format").
 *
 * Also here: the small parsing and printing toolkit the families share (tiles, `key=value`
 * options), so that every format spells blocks the same way. Browser-safe: no Node API.
 */

/** `[rows, cols]` of one scaling block over a row-major matrix; -1 = the whole dimension. */
export type Tile = readonly [rows: number, cols: number];

/** One `:`-separated option after a format's base name: `block=32` or a bare word like `sym`. */
export interface FormatOption {
  readonly key: string;
  readonly value: string | undefined;
}

/**
 * Thrown by a family's `parse` for a string that is its format but malformed; the registry turns
 * it into a QuantLensError('bad-argument') that quotes the input and lists every valid form.
 */
export class FormatSyntaxError extends Error {}

/** Storage of a quantized matrix: elements plus every scale, exponent and zero point. */
export interface StorageBreakdown {
  readonly elements: number;
  /** Bits of the quantized elements themselves. */
  readonly elementBits: number;
  /** Bits of scales, exponents and zero points. */
  readonly metadataBits: number;
  readonly totalBits: number;
  /** totalBits / elements (0 for an empty matrix). */
  readonly bitsPerElement: number;
}

/**
 * Whether the user's block / group size applies to a format: `free` (any tile; the settings'
 * block size and `withTile` set it), `fixed` (the format defines its block, like llama.cpp's
 * q4_0; `withTile` accepts only that tile), `none` (unblocked, e.g. fp16; `withTile` is a no-op).
 */
export type Tiling = 'free' | 'fixed' | 'none';

/** The base shape every parsed format has: a kind tag and, when blocked, its tile. */
export interface FormatBase {
  readonly kind: string;
  readonly tile?: Tile;
}

/**
 * One registry entry. `F` is the family's parsed format; its `kind` must be unique among the
 * families, since it routes a parsed value back to its entry.
 */
export interface FormatFamily<F extends FormatBase> {
  readonly kind: F['kind'];
  /** The forms it accepts, one line each, for CLI help and parse errors (e.g. `nvfp4[:block=<n>]`). */
  readonly syntax: string;
  /** Short list for one-line CLI help, e.g. `mxint2…8`. */
  readonly summary: string;
  /** Strings the settings UI offers for the weights and for A/B, in display order (may be empty). */
  readonly weightChoices: readonly string[];
  readonly factorChoices: readonly string[];
  readonly tiling: Tiling;
  /**
   * Parses a lower-cased base name and its options. Returns undefined when `base` is not one of
   * this family's names (the registry then asks the next family); throws FormatSyntaxError when it
   * is but the options are wrong.
   */
  parse(base: string, options: readonly FormatOption[]): F | undefined;
  /** Canonical string: `parse` of it gives back an equal format; defaults are left out. */
  print(format: F): string;
  /** Short human label for the UI, e.g. "MXINT4 (block 16)". */
  label(format: F): string;
  /** The tile the format has when its string names none (undefined for unblocked formats). */
  defaultTile(format: F): Tile | undefined;
  /** Exact storage of a rows×cols matrix, ragged tiles counted as whole tiles. */
  storage(format: F, rows: number, cols: number): StorageBreakdown;
  /**
   * Quantize then dequantize `data` (rows×cols, row-major) into `out` (same length, may be `data`
   * itself). Shapes are already checked. `importance` (length cols, or null) is the per-column
   * weight that importance-weighted formats use (llama.cpp's imatrix); the others ignore it.
   */
  fakeQuantize(
    data: Float32Array,
    rows: number,
    cols: number,
    format: F,
    out: Float32Array,
    importance?: Float32Array | null,
  ): void;
}

export const MIN_ELEMENT_BITS = 2;
export const MAX_ELEMENT_BITS = 8;

export function storageBreakdown(elements: number, bitsEach: number, metadataBits: number): StorageBreakdown {
  if (elements === 0) return { elements: 0, elementBits: 0, metadataBits: 0, totalBits: 0, bitsPerElement: 0 };
  const elementBits = elements * bitsEach;
  const totalBits = elementBits + metadataBits;
  return { elements, elementBits, metadataBits, totalBits, bitsPerElement: totalBits / elements };
}

/** Parses one tile size: a positive integer or -1. */
export function parseTileSize(text: string): number {
  if (!/^(-1|[1-9]\d*)$/.test(text))
    throw new FormatSyntaxError(`"${text}" is not a block size (a positive integer or -1)`);
  return Number(text);
}

/** `16` → [1, 16] (along the last dimension); `16x1` or `16,1` → [16, 1]. */
export function parseTile(text: string): Tile {
  const parts = text.split(/[x×,]/);
  if (parts.length === 1) return [1, parseTileSize(parts[0] ?? '')];
  if (parts.length === 2) return [parseTileSize(parts[0] ?? ''), parseTileSize(parts[1] ?? '')];
  throw new FormatSyntaxError(`"${text}" is not a block shape`);
}

/** The element width in `mxint4` / `int4`, checked against 2…8. */
export function parseElementBits(digits: string): number {
  const bits = Number(digits);
  if (!Number.isInteger(bits) || bits < MIN_ELEMENT_BITS || bits > MAX_ELEMENT_BITS) {
    throw new FormatSyntaxError(`element width must be ${MIN_ELEMENT_BITS}…${MAX_ELEMENT_BITS} bits`);
  }
  return bits;
}

/** The value of a `key=value` option, which must have one. */
export function requireValue(option: FormatOption): string {
  if (option.value === undefined || option.value === '')
    throw new FormatSyntaxError(`option "${option.key}" needs a value`);
  return option.value;
}

/** A bare-word option (`sym`, `channel`) has no `=value`. */
export function isFlag(option: FormatOption, word: string): boolean {
  return option.key === word && option.value === undefined;
}

export function sameTile(a: Tile, b: Tile): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

/** `[1, 16]` → `16`; anything else → `16x1`. Inverse of parseTile. */
export function tileToString(tile: Tile): string {
  return tile[0] === 1 ? String(tile[1]) : `${tile[0]}x${tile[1]}`;
}

/** `:block=…` when the tile is not the default, else nothing. */
export function blockOption(tile: Tile, defaultTile: Tile): string {
  return sameTile(tile, defaultTile) ? '' : `:block=${tileToString(tile)}`;
}

/** "per row", "block 16", "block 16×1", "block all×4". */
export function tileLabel(tile: Tile): string {
  if (tile[0] === 1) return tile[1] === -1 ? 'per row' : `block ${tile[1]}`;
  const size = (n: number): string => (n === -1 ? 'all' : String(n));
  return `block ${size(tile[0])}×${size(tile[1])}`;
}

/**
 * `print`, `label` and `defaultTile` of a format spelled `name[:block=…]`: the label is
 * `defaultLabel` at the default tile, else `base (block …)`.
 */
export function blockOnlyNaming<F extends FormatBase & { readonly tile: Tile }>(
  name: string,
  defaultTile: Tile,
  base: string,
  defaultLabel = base,
): Pick<FormatFamily<F>, 'print' | 'label' | 'defaultTile'> {
  return {
    print: (f) => `${name}${blockOption(f.tile, defaultTile)}`,
    label: (f) => (sameTile(f.tile, defaultTile) ? defaultLabel : `${base} (${tileLabel(f.tile)})`),
    defaultTile: () => defaultTile,
  };
}

/**
 * Options of the formats whose only option is the block (`nvfp4`, `fp8`, and fixed-grid formats):
 * the tile from `block=`, `default` otherwise; `extra` handles any further bare words.
 */
export function parseBlockOnly(
  name: string,
  options: readonly FormatOption[],
  defaultTile: Tile,
  extra: (option: FormatOption) => Tile | undefined = () => undefined,
): Tile {
  let tile = defaultTile;
  for (const option of options) {
    const other = option.key === 'block' ? parseTile(requireValue(option)) : extra(option);
    if (!other) throw new FormatSyntaxError(`"${option.key}" is not an option of ${name}`);
    tile = other;
  }
  return tile;
}
