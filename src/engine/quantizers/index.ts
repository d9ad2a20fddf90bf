/** Number formats, fake quantization and bit accounting. Pure TypeScript, no VS Code dependency. */
export {
  DEFAULT_TILES,
  FORMAT_SYNTAX_HELP,
  MINIFLOAT_NAMES,
  formatLabel,
  formatToString,
  parseFormat,
  tileOf,
  withTile,
  type BlockedFormat,
  type FloatFormat,
  type Fp8Format,
  type IntFormat,
  type MinifloatName,
  type MxfpFormat,
  type MxintFlavour,
  type MxintFormat,
  type NumberFormat,
  type Nvfp4Format,
  type Tile,
} from './format';
export { fakeQuantize, type FakeQuantizeOptions } from './fakeQuantize';
export { STORAGE_CONVENTIONS, bitsPerElement, storageOf, type StorageBreakdown } from './bits';
export {
  averageBitsPerStoredElement,
  bitsPerOriginalWeight,
  lowRankCost,
  type LowRankCost,
  type LowRankLayer,
} from './cost';
export { MINIFLOATS, roundToMinifloat, type MinifloatSpec } from './minifloat';
export { tileCount, tileGrid, type TileGrid } from './tiling';
