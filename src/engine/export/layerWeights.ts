/**
 * The deployed form of one planned layer, computed for the targets that write tensors: W_q and
 * the factors A [in, k], B [k, out] after their own quantization (Ŵ = W_q + (A·B)ᵀ).
 */
import { throwIfCancelled } from '../errors';
import { reconstructLayer, type Reconstruction } from '../methods/reconstruct';
import type { ExportPlan, LayerExport } from './plan';

export async function reconstructPlanned(
  plan: ExportPlan,
  l: LayerExport,
  signal?: AbortSignal,
): Promise<Reconstruction> {
  throwIfCancelled(signal);
  const w = await plan.checkpoint.readWeight(l.name, signal);
  const calib = plan.stats ? await plan.stats.layerCalibration(l.name, w.in) : undefined;
  return reconstructLayer(
    { name: l.name, data: w.data, out: w.out, in: w.in, ...(calib ? { calibration: calib } : {}) },
    { ...plan.settings, weightFormat: l.format },
    l.rank,
    signal,
  );
}

/** Calls `produce` at most once and shares its promise: a layer's tensors are written one after another. */
export function once<T>(produce: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => (pending ??= produce());
}
