/**
 * Number formats, fake quantization and bit accounting. Pure TypeScript, no VS Code dependency;
 * browser-safe (no Node API).
 */
export {
  FACTOR_FORMAT_CHOICES,
  FORMAT_FAMILIES,
  FORMAT_SUMMARY,
  FORMAT_SYNTAX_HELP,
  WEIGHT_FORMAT_CHOICES,
  familyOf,
  formatLabel,
  formatToString,
  isQuantized,
  parseFormat,
  takesBlockSize,
  tileOf,
  withTile,
  type BlockedFormat,
  type NumberFormat,
} from './formats';
export type { FormatFamily, FormatOption, StorageBreakdown, Tile, Tiling } from './formatFamily';
export type { FloatFormat } from './float';
export type { Fp8Format } from './fp8';
export type { GgmlFormat } from './llamaCpp';
export type { IntFormat } from './intGroup';
export type { MxfpFormat } from './mxfp';
export type { MxintFlavour, MxintFormat } from './mxint';
export type { Nvfp4Format } from './nvfp4';
export { fakeQuantize, type FakeQuantizeOptions } from './fakeQuantize';
export { bitsPerElement, storageOf } from './bits';
export {
  averageBitsPerStoredElement,
  bitsPerOriginalWeight,
  lowRankCost,
  type LowRankCost,
  type LowRankLayer,
} from './cost';
export { MINIFLOATS, MINIFLOAT_NAMES, roundToMinifloat, type MinifloatName, type MinifloatSpec } from './minifloat';
export { tileCount, tileGrid, type TileGrid } from './tiling';
