/**
 * The number formats Quant Lens can fake-quantize to, in one list, and everything that works on
 * "any format": parsing the short strings users type (`mxint4`, `mxint3:block=32`,
 * `int4:g128:sym`, `mxfp4`, `nvfp4`, `fp8`, …), printing, labels, tiles, the settings UI's choices
 * and the CLI's help. Each family lives in its own file and implements `FormatFamily`
 * (formatFamily.ts); to add one, write that file and add it to FORMAT_FAMILIES below.
 *
 * Every blocked format carries its tile: the 2-D `[rows, cols]` window over a row-major matrix
 * whose elements share one scale. `-1`, or a size at least the matrix dimension, means the whole
 * dimension. For a weight W[out, in] the usual tile is `[1, n]`: n consecutive input channels of
 * one output row. Low-rank factors may want `[n, 1]` instead (see `withTile`).
 *
 * Browser-safe: the webviews use the labels and choices.
 */
import { QuantLensError } from '../errors';
import { floatFamily } from './float';
import { FormatSyntaxError, type FormatFamily, type FormatOption, type Tile } from './formatFamily';
import { fp8Family } from './fp8';
import { ggmlFamily } from './llamaCpp';
import { intFamily } from './intGroup';
import { mxfpFamily } from './mxfp';
import { mxintFamily } from './mxint';
import { nvfp4Family } from './nvfp4';

/** Every format family, in the order the settings UI and the help list them. */
export const FORMAT_FAMILIES = [
  mxintFamily,
  intFamily,
  mxfpFamily,
  nvfp4Family,
  fp8Family,
  ggmlFamily,
  floatFamily,
] as const;

type FormatOfFamily<T> = T extends FormatFamily<infer F> ? F : never;

/** A parsed number format: the union of every family's format type. */
export type NumberFormat = FormatOfFamily<(typeof FORMAT_FAMILIES)[number]>;

/** A format with a scaling tile (everything but the unquantized ones). */
export type BlockedFormat = Extract<NumberFormat, { readonly tile: Tile }>;

const FAMILY_BY_KIND = new Map<string, FormatFamily<NumberFormat>>(FORMAT_FAMILIES.map((f) => [f.kind, f]));

/** The registry entry of a parsed format. */
export function familyOf(format: NumberFormat): FormatFamily<NumberFormat> {
  const family = FAMILY_BY_KIND.get(format.kind);
  if (!family) throw new QuantLensError('bad-argument', `"${format.kind}" is not a number format kind`);
  return family;
}

/** The forms `parseFormat` accepts, one per line, for error messages and help text. */
export const FORMAT_SYNTAX_HELP = FORMAT_FAMILIES.map((f) => f.syntax).join('\n');

/** One line naming every family, for a CLI option's help: "mxint2…8, int2…8[:g128][:sym], …". */
export const FORMAT_SUMMARY = FORMAT_FAMILIES.map((f) => f.summary).join(', ');

/** Weight formats the settings UI offers (package.json's `quantLens.weightFormat` enum). */
export const WEIGHT_FORMAT_CHOICES: readonly string[] = FORMAT_FAMILIES.flatMap((f) => f.weightChoices);

/** A/B formats the settings UI offers (package.json's `quantLens.factorFormat` enum). */
export const FACTOR_FORMAT_CHOICES: readonly string[] = FORMAT_FAMILIES.flatMap((f) => f.factorChoices);

function badFormat(text: string, why: string): QuantLensError {
  return new QuantLensError(
    'bad-argument',
    `unknown number format "${text}": ${why}. Valid forms:\n${FORMAT_SYNTAX_HELP}`,
  );
}

function splitOptions(parts: readonly string[]): FormatOption[] {
  return parts.map((part) => {
    const eq = part.indexOf('=');
    return eq < 0 ? { key: part, value: undefined } : { key: part.slice(0, eq), value: part.slice(eq + 1) };
  });
}

/**
 * Parses a format string (case-insensitive, options separated by `:`).
 * Throws QuantLensError('bad-argument') listing the valid forms for anything else.
 */
export function parseFormat(text: string): NumberFormat {
  const [base = '', ...rest] = text.trim().toLowerCase().split(':');
  const options = splitOptions(rest);
  if (options.some((o) => o.key === '')) throw badFormat(text, 'empty option');
  for (const family of FORMAT_FAMILIES) {
    try {
      const format = family.parse(base, options);
      if (format) return format;
    } catch (e) {
      if (e instanceof FormatSyntaxError) throw badFormat(text, e.message);
      throw e;
    }
  }
  throw badFormat(text, base === '' ? 'empty format' : `"${base}" is not a format name`);
}

/** Canonical string for a format; `parseFormat(formatToString(f))` gives back an equal format. */
export function formatToString(format: NumberFormat): string {
  return familyOf(format).print(format);
}

/** Short human label, e.g. "MXINT4 (block 16)", "INT4 g128 asym", "NVFP4", "FP8 E4M3 per channel". */
export function formatLabel(format: NumberFormat): string {
  return familyOf(format).label(format);
}

/** The tile of a blocked format; undefined for unquantized formats. */
export function tileOf(format: NumberFormat): Tile | undefined {
  return 'tile' in format ? format.tile : undefined;
}

/** Whether the format changes the values at all (false for fp16 / fp32). */
export function isQuantized(format: NumberFormat): boolean {
  return familyOf(format).tiling !== 'none';
}

/** Whether a user-chosen block or group size applies to the format (false for fixed-block and unblocked ones). */
export function takesBlockSize(format: NumberFormat): boolean {
  return familyOf(format).tiling === 'free';
}

/**
 * The same format with another tile, e.g. `[16, 1]` for the other blocking of low-rank factors.
 * Unblocked formats come back as they are; a fixed-block format accepts only its own tile.
 */
export function withTile<F extends NumberFormat>(format: F, tile: Tile): F {
  const family = familyOf(format);
  if (family.tiling === 'none') return format;
  for (const size of tile) {
    if (!(size === -1 || (Number.isInteger(size) && size >= 1))) {
      throw new QuantLensError('bad-argument', `block size ${size} is not a positive integer or -1`);
    }
  }
  const own = tileOf(format);
  if (family.tiling === 'fixed' && !(own && own[0] === tile[0] && own[1] === tile[1])) {
    throw new QuantLensError('bad-argument', `${formatLabel(format)} has a fixed block; it cannot be re-tiled`);
  }
  return { ...format, tile: [tile[0], tile[1]] };
}
