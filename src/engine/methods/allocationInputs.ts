/**
 * The inputs of a rank allocation for a whole checkpoint: every selected layer analysed once per
 * candidate weight format up to the largest rank, keeping only the curves (allocation.ts).
 */
import { throwIfCancelled } from '../errors';
import type { StatsFile } from '../calibration/statsFile';
import type { Checkpoint, LinearLayer } from '../readers/checkpoint';
import { analyzeLayer, type AnalysisSettings } from './analyzeLayer';
import { allocationLayer, fuseKey, type AllocationLayer } from './allocation';
import type { LayerResults, StoredLayerAnalysis } from '../store/storedAnalysis';

export interface AllocationInputOptions {
  checkpoint: Checkpoint;
  layers: LinearLayer[];
  stats: StatsFile | null;
  /** Method, factor format and tiling, and the largest rank; the weight format comes from `formats`. */
  settings: Omit<AnalysisSettings, 'weightFormat' | 'spectra'>;
  formats: string[];
  signal?: AbortSignal;
  onLayer?: (done: number, total: number, layer: string) => void;
  /** A result store: curves analysed before are read from it, new ones are written into it. */
  results?: LayerResults;
  warn?: (message: string) => void;
  /** Each analysis from `results`, stored or computed. */
  onAnalysis?: (a: StoredLayerAnalysis) => void;
}

/** The layer's allocation inputs with the fused group it belongs to (used when allocating with `fused`). */
function withFuse(l: AllocationLayer, layer: LinearLayer): AllocationLayer {
  const fuse = fuseKey(layer);
  return fuse === undefined ? l : { ...l, fuse };
}

export async function allocationInputs(o: AllocationInputOptions): Promise<AllocationLayer[]> {
  const out: AllocationLayer[] = [];
  for (const layer of o.layers) {
    throwIfCancelled(o.signal);
    if (o.results) {
      const variants = o.formats.map((weightFormat) => ({ ...o.settings, weightFormat, spectra: false }));
      const analyses = await o.results.analyzeVariants(layer.name, variants, { signal: o.signal, warn: o.warn });
      for (const a of analyses) o.onAnalysis?.(a);
      out.push(withFuse(allocationLayer(analyses), layer));
      o.onLayer?.(out.length, o.layers.length, layer.name);
      continue;
    }
    const w = await o.checkpoint.readWeight(layer.name, o.signal);
    const calibration = o.stats ? await o.stats.layerCalibration(layer.name, w.in) : undefined;
    const input = { name: layer.name, data: w.data, out: w.out, in: w.in, ...(calibration ? { calibration } : {}) };
    const analyses = [];
    for (const weightFormat of o.formats) {
      // Spectra are not needed: the allocation reads the exact per-rank curves only.
      analyses.push(await analyzeLayer(input, { ...o.settings, weightFormat, spectra: false }, { signal: o.signal }));
    }
    out.push(withFuse(allocationLayer(analyses), layer));
    o.onLayer?.(out.length, o.layers.length, layer.name);
  }
  return out;
}
