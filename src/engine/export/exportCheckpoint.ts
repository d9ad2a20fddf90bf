/**
 * Writes a quantized checkpoint as safetensors. For each processed layer with weight tensor N:
 * N = dequantized W_q in the source layout, N.lqer_A [in, k] and N.lqer_B [k, out] (dequantized
 * after their own quantization), and the settings in __metadata__; every other tensor is copied
 * unchanged (raw bytes from safetensors sources, float32 otherwise). Ŵ = W_q + (A·B)ᵀ holds
 * exactly for what is written (MXINT values are exact in bf16 and f16 too). Only one layer is in
 * memory at a time.
 */
import { QuantLensError, throwIfCancelled } from '../errors';
import { RandomAccessFile } from '../readers/fileAccess';
import { isElementType, type ElementType } from '../readers/dtypes';
import { transpose } from '../readers/layout';
import type { Checkpoint, LinearLayer, TensorInfo } from '../readers/checkpoint';
import type { StatsFile } from '../calibration/statsFile';
import { reconstructLayer } from '../methods/reconstruct';
import type { AnalysisSettings } from '../methods/analyzeLayer';
import type { Recipe } from '../methods/recipe';
import { bf16Bytes, f16Bytes, f32Bytes, writeSafetensorsFile, type TensorToWrite } from '../writers/safetensorsWriter';

export type ExportDType = 'F32' | 'BF16' | 'F16';

export interface ExportOptions {
  checkpoint: Checkpoint;
  /** Layers to quantize (ignored for layers not in the recipe when a recipe is given). */
  layers: LinearLayer[];
  settings: Omit<AnalysisSettings, 'maxRank' | 'spectra'>;
  rank: number;
  recipe?: Recipe | null;
  stats?: StatsFile | null;
  dtype: ExportDType;
  out: string;
  signal?: AbortSignal;
  onLayer?: (done: number, total: number, layer: string) => void;
}

export interface ExportResult {
  path: string;
  layers: Record<string, { format: string; rank: number; method: string }>;
  tensors: number;
}

function encode(a: Float32Array, dtype: ExportDType): Uint8Array {
  if (dtype === 'BF16') return bf16Bytes(a);
  if (dtype === 'F16') return f16Bytes(a);
  return f32Bytes(a);
}

/** The dtype under which a tensor's raw bytes can be copied as they are, or null. */
function rawCopyable(ckpt: Checkpoint, t: TensorInfo): ElementType | null {
  if (ckpt.format !== 'safetensors' || t.offset === undefined || !isElementType(t.dtype)) return null;
  return t.dtype;
}

export async function exportQuantizedCheckpoint(o: ExportOptions): Promise<ExportResult> {
  const ckpt = o.checkpoint;
  const recipe = o.recipe ?? null;
  const chosen = recipe ? ckpt.linearLayers.filter((l) => recipe.layers[l.name]) : o.layers;
  const byTensor = new Map<string, LinearLayer>();
  for (const l of chosen) {
    if (l.tensor && l.tensor !== l.name) {
      throw new QuantLensError(
        'unsupported',
        `layer "${l.name}" is a slice of the stacked tensor "${l.tensor}"; exporting stacked expert tensors is not supported`,
        ckpt.path,
      );
    }
    byTensor.set(l.name, l);
  }
  const files = new Map<string, Promise<RandomAccessFile>>();
  const fileOf = (p: string) => {
    let f = files.get(p);
    if (!f) files.set(p, (f = RandomAccessFile.open(p)));
    return f;
  };
  const out: TensorToWrite[] = [];
  const layerSettings: ExportResult['layers'] = {};
  let done = 0;
  for (const t of ckpt.tensors) {
    const layer = byTensor.get(t.name);
    if (!layer) {
      const raw = rawCopyable(ckpt, t);
      if (raw) {
        out.push({
          name: t.name,
          dtype: raw,
          shape: t.shape,
          bytes: async () => (await fileOf(t.file)).read(t.offset!, t.byteLength, t.name),
        });
      } else if (t.decodable === true) {
        out.push({
          name: t.name,
          dtype: 'F32',
          shape: t.shape,
          bytes: async () => f32Bytes(await ckpt.readTensor(t.name)),
        });
      } else {
        throw new QuantLensError(
          'unsupported',
          `tensor "${t.name}" (${t.dtype}) cannot be copied: ${t.decodable.reason}`,
          t.file,
        );
      }
      continue;
    }
    const entry = recipe?.layers[layer.name];
    const s = entry ? { ...o.settings, weightFormat: entry.format } : o.settings;
    const k = entry ? entry.rank : o.rank;
    let pending: Promise<{ wq: Uint8Array; a: Uint8Array; b: Uint8Array }> | undefined;
    const produce = () =>
      (pending ??= (async () => {
        throwIfCancelled(o.signal);
        const w = await ckpt.readWeight(layer.name, o.signal);
        const calib = o.stats ? await o.stats.layerCalibration(layer.name, w.in) : undefined;
        const r = await reconstructLayer(
          { name: layer.name, data: w.data, out: w.out, in: w.in, ...(calib ? { calibration: calib } : {}) },
          s,
          k,
          o.signal,
        );
        o.onLayer?.(++done, byTensor.size, layer.name);
        const wq = layer.storedTransposed ? transpose(r.wq, r.out, r.in) : r.wq;
        return { wq: encode(wq, o.dtype), a: encode(r.a, o.dtype), b: encode(r.b, o.dtype) };
      })());
    const [nOut, nIn] = layer.shape;
    const kEff = s.method === 'rtn' ? 0 : Math.min(k, nOut, nIn);
    layerSettings[layer.name] = { format: s.weightFormat, rank: kEff, method: s.method };
    out.push({ name: t.name, dtype: o.dtype, shape: t.shape, bytes: async () => (await produce()).wq });
    if (kEff > 0) {
      out.push({
        name: `${t.name}.lqer_A`,
        dtype: o.dtype,
        shape: [nIn, kEff],
        bytes: async () => (await produce()).a,
      });
      out.push({
        name: `${t.name}.lqer_B`,
        dtype: o.dtype,
        shape: [kEff, nOut],
        bytes: async () => (await produce()).b,
      });
    }
  }
  try {
    await writeSafetensorsFile(
      o.out,
      out,
      {
        ...ckpt.metadata,
        quant_lens: JSON.stringify({
          method: o.settings.method,
          weightFormat: o.settings.weightFormat,
          factorFormat: o.settings.factorFormat,
          factorTiling: o.settings.factorTiling,
          rank: o.rank,
          layers: layerSettings,
          reconstruction:
            'W_hat = W_q + (lqer_A @ lqer_B)^T for each layer N listed; W_q is stored under N in the source layout',
        }),
      },
      o.signal,
    );
  } finally {
    for (const f of files.values()) await (await f).close().catch(() => undefined);
  }
  return { path: o.out, layers: layerSettings, tensors: out.length };
}
