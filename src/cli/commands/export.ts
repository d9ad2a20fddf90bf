/**
 * `quant-lens export <checkpoint> --out <file.safetensors>`: writes the quantized checkpoint.
 * For each processed layer with weight tensor N: N = dequantized W_q in the source layout,
 * N.lqer_A [in, k] and N.lqer_B [k, out] (dequantized after their own quantization) and the
 * settings in __metadata__; every other tensor is copied unchanged. Ŵ = W_q + (A·B)ᵀ holds exactly
 * for what is written (MXINT values are exact in bf16 and f16 too).
 */
import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { QuantLensError } from '../../engine/errors';
import { openCheckpoint } from '../../engine/readers/open';
import { RandomAccessFile } from '../../engine/readers/fileAccess';
import { isElementType, type ElementType } from '../../engine/readers/dtypes';
import { transpose } from '../../engine/readers/layout';
import type { Checkpoint, LinearLayer, TensorInfo } from '../../engine/readers/checkpoint';
import { StatsFile } from '../../engine/calibration/statsFile';
import { reconstructLayer } from '../../engine/methods/reconstruct';
import type { AnalysisSettings } from '../../engine/methods/analyzeLayer';
import { layerCalibration } from '../../worker/handlers';
import {
  bf16Bytes,
  f16Bytes,
  f32Bytes,
  writeSafetensorsFile,
  type TensorToWrite,
} from '../../engine/writers/safetensorsWriter';
import { parse, requirePositional } from '../args';
import { analysisOptionSpec, analysisOptionsHelp, resolveSettings, selectLayers } from '../analysisOptions';
import { parseRecipe, type Recipe } from '../../engine/methods/recipe';
import { ProgressBar } from '../progress';

export const exportHelp = `quant-lens export <checkpoint> --out <file.safetensors> [options]
  Writes the quantized checkpoint: W_q in place of each processed weight N, plus N.lqer_A and
  N.lqer_B, with the settings in __metadata__; other tensors are copied unchanged.
${analysisOptionsHelp}
  --out <file>            the .safetensors file to write (required)
  --dtype <t>             f32 (default), bf16 or f16 for W_q, A and B (all exact for MXINT values)
  --recipe <file.json>    per-layer format and rank (from the rank-allocation view), overriding --format/--rank`;

type OutDType = 'F32' | 'BF16' | 'F16';

function encode(a: Float32Array, dtype: OutDType): Uint8Array {
  if (dtype === 'BF16') return bf16Bytes(a);
  if (dtype === 'F16') return f16Bytes(a);
  return f32Bytes(a);
}

/** Raw bytes of a tensor when they can be copied as they are (safetensors sources), else null. */
function rawCopyable(ckpt: Checkpoint, t: TensorInfo): ElementType | null {
  if (ckpt.format !== 'safetensors' || t.offset === undefined || !isElementType(t.dtype)) return null;
  return t.dtype;
}

export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...analysisOptionSpec,
    out: { type: 'string' },
    dtype: { type: 'string' },
    recipe: { type: 'string' },
  });
  const path = requirePositional(positionals, 0, 'checkpoint path');
  if (!values.out) throw new QuantLensError('bad-argument', '--out <file.safetensors> is required');
  const dtype = (values.dtype ?? 'f32').toUpperCase() as OutDType;
  if (!['F32', 'BF16', 'F16'].includes(dtype))
    throw new QuantLensError('bad-argument', `--dtype must be f32, bf16 or f16`);
  const { settings, rank } = resolveSettings(values);
  let recipe: Recipe | null = null;
  if (values.recipe) {
    const text = await readFile(values.recipe, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new QuantLensError('not-found', `cannot read: ${e.code ?? e.message}`, values.recipe);
    });
    recipe = parseRecipe(text, values.recipe);
  }
  const ckpt = await openCheckpoint(resolve(path));
  const stats = values.calib ? await StatsFile.open(resolve(values.calib)) : null;
  try {
    const layers = recipe
      ? ckpt.linearLayers.filter((l) => recipe!.layers[l.name])
      : selectLayers(ckpt.linearLayers, values.layer, values.all);
    const byTensor = new Map<string, LinearLayer>();
    for (const l of layers) {
      if (l.tensor && l.tensor !== l.name) {
        throw new QuantLensError(
          'unsupported',
          `layer "${l.name}" is a slice of the stacked tensor "${l.tensor}"; exporting stacked expert tensors is not supported`,
          ckpt.path,
        );
      }
      byTensor.set(l.name, l);
    }
    const bar = new ProgressBar(ckpt.tensors.length);
    const files = new Map<string, Promise<RandomAccessFile>>();
    const fileOf = (p: string) => {
      let f = files.get(p);
      if (!f) files.set(p, (f = RandomAccessFile.open(p)));
      return f;
    };
    const out: TensorToWrite[] = [];
    const layerSettings: Record<string, { format: string; rank: number; method: string }> = {};
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
      const s: AnalysisSettings = entry
        ? { ...settings, weightFormat: entry.format, maxRank: entry.rank }
        : { ...settings, maxRank: rank };
      const k = entry ? entry.rank : rank;
      // Each layer is reconstructed when its bytes are due, so only one layer is in memory at a time.
      let pending: Promise<{ wq: Uint8Array; a: Uint8Array; b: Uint8Array }> | undefined;
      const produce = () =>
        (pending ??= (async () => {
          const w = await ckpt.readWeight(layer.name);
          const calib = stats ? await layerCalibration(stats, layer.name, w.in) : undefined;
          const r = await reconstructLayer(
            { name: layer.name, data: w.data, out: w.out, in: w.in, ...(calib ? { calibration: calib } : {}) },
            s,
            k,
          );
          bar.update(++done, layer.name);
          const wq = layer.storedTransposed ? transpose(r.wq, r.out, r.in) : r.wq;
          return { wq: encode(wq, dtype), a: encode(r.a, dtype), b: encode(r.b, dtype) };
        })());
      const [nOut, nIn] = layer.shape;
      const kEff = s.method === 'rtn' ? 0 : Math.min(k, nOut, nIn);
      layerSettings[layer.name] = { format: s.weightFormat, rank: kEff, method: s.method };
      out.push({ name: t.name, dtype, shape: t.shape, bytes: async () => (await produce()).wq });
      if (kEff > 0) {
        out.push({ name: `${t.name}.lqer_A`, dtype, shape: [nIn, kEff], bytes: async () => (await produce()).a });
        out.push({ name: `${t.name}.lqer_B`, dtype, shape: [kEff, nOut], bytes: async () => (await produce()).b });
      }
    }
    await writeSafetensorsFile(values.out, out, {
      ...ckpt.metadata,
      quant_lens: JSON.stringify({
        method: settings.method,
        weightFormat: settings.weightFormat,
        factorFormat: settings.factorFormat,
        factorTiling: settings.factorTiling,
        rank,
        calibration: values.calib ?? null,
        layers: layerSettings,
        reconstruction:
          'W_hat = W_q + (lqer_A @ lqer_B)^T for each layer N listed; W_q is stored under N in the source layout',
      }),
    });
    bar.done();
    for (const f of files.values()) await (await f).close();
    process.stderr.write(
      `wrote ${values.out}: ${Object.keys(layerSettings).length} quantized layers, ${ckpt.tensors.length} tensors\n`,
    );
    return 0;
  } finally {
    await stats?.close();
    await ckpt.close();
  }
}
