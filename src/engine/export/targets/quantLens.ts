/**
 * Quant Lens's own safetensors export. For each planned layer with weight tensor N:
 * N = dequantized W_q in the source layout, N.lqer_A [in, k] and N.lqer_B [k, out] (dequantized
 * after their own quantization), and the settings in __metadata__; every other tensor is copied
 * unchanged (raw bytes from safetensors sources, float32 otherwise). Ŵ = W_q + (A·B)ᵀ holds
 * exactly for what is written (MXINT values are exact in bf16 and f16 too). Only one layer is in
 * memory at a time.
 */
import { QuantLensError } from '../../errors';
import { RandomAccessFile } from '../../readers/fileAccess';
import { isElementType, type ElementType } from '../../readers/dtypes';
import { transpose } from '../../readers/layout';
import type { Checkpoint, TensorInfo } from '../../readers/checkpoint';
import { f32Bytes, writeSafetensorsFile, type TensorToWrite } from '../../writers/safetensorsWriter';
import { encodeAs } from '../storage';
import { ggmlNotes, layerRecords, type ExportPlan } from '../plan';
import { once, reconstructPlanned } from '../layerWeights';
import type { ExportOutcome, ExportTarget, ExportWrite } from '../target';

/** The dtype under which a tensor's raw bytes can be copied as they are, or null. */
export function rawCopyable(ckpt: Checkpoint, t: TensorInfo): ElementType | null {
  if (ckpt.format !== 'safetensors' || t.offset === undefined || !isElementType(t.dtype)) return null;
  return t.dtype;
}

/** Opens each source file once; `close` releases them all. */
export function sourceFiles(): { get(path: string): Promise<RandomAccessFile>; close(): Promise<void> } {
  const files = new Map<string, Promise<RandomAccessFile>>();
  return {
    get(path) {
      let f = files.get(path);
      if (!f) files.set(path, (f = RandomAccessFile.open(path)));
      return f;
    },
    async close() {
      for (const f of files.values()) await (await f).close().catch(() => undefined);
    },
  };
}

/** A tensor the export does not quantize, as it is in the source (raw bytes when possible). */
export function copiedTensor(ckpt: Checkpoint, t: TensorInfo, files: ReturnType<typeof sourceFiles>): TensorToWrite {
  const raw = rawCopyable(ckpt, t);
  if (raw) {
    return {
      name: t.name,
      dtype: raw,
      shape: t.shape,
      bytes: async () => (await files.get(t.file)).read(t.offset!, t.byteLength, t.name),
    };
  }
  if (t.decodable === true) {
    return { name: t.name, dtype: 'F32', shape: t.shape, bytes: async () => f32Bytes(await ckpt.readTensor(t.name)) };
  }
  throw new QuantLensError(
    'unsupported',
    `tensor "${t.name}" (${t.dtype}) cannot be copied: ${t.decodable.reason}`,
    t.file,
  );
}

export const quantLensTarget: ExportTarget = {
  id: 'quant-lens',
  label: 'Quant Lens safetensors',
  description: 'W_q in place of each weight N, with N.lqer_A and N.lqer_B and the settings in the metadata',
  output: 'file',
  extension: 'safetensors',
  defaultName: (stem) => `${stem}.quantized.safetensors`,
  carriesCorrection: true,
  dtypes: ['F32', 'BF16', 'F16'],
  refusals(selection) {
    return selection.layers
      .filter((l) => l.stackedIn)
      .map((l) => ({
        layer: l.name,
        value: `a slice of the stacked tensor "${l.stackedIn}"`,
        reason: 'exporting stacked expert tensors is not supported',
      }));
  },
  write: writeQuantLensSafetensors,
};

async function writeQuantLensSafetensors(plan: ExportPlan, run: ExportWrite): Promise<ExportOutcome> {
  const ckpt = plan.checkpoint;
  const dtype = run.dtype ?? 'F32';
  const planned = new Map(plan.layers.map((l) => [l.name, l]));
  const files = sourceFiles();
  const out: TensorToWrite[] = [];
  let done = 0;
  for (const t of ckpt.tensors) {
    const l = planned.get(t.name);
    if (!l) {
      out.push(copiedTensor(ckpt, t, files));
      continue;
    }
    const linear = plan.linear.get(l.name)!;
    const produce = once(async () => {
      const r = await reconstructPlanned(plan, l, run.signal);
      run.onLayer?.(++done, plan.layers.length, l.name);
      const wq = linear.storedTransposed ? transpose(r.wq, r.out, r.in) : r.wq;
      return { wq: encodeAs(wq, dtype), a: encodeAs(r.a, dtype), b: encodeAs(r.b, dtype) };
    });
    const [nOut, nIn] = l.shape;
    out.push({ name: t.name, dtype, shape: t.shape, bytes: async () => (await produce()).wq });
    if (l.rank > 0) {
      out.push({ name: `${t.name}.lqer_A`, dtype, shape: [nIn, l.rank], bytes: async () => (await produce()).a });
      out.push({ name: `${t.name}.lqer_B`, dtype, shape: [l.rank, nOut], bytes: async () => (await produce()).b });
    }
  }
  const layers = layerRecords(plan);
  try {
    await writeSafetensorsFile(
      run.output,
      out,
      {
        ...ckpt.metadata,
        quant_lens: JSON.stringify({
          method: plan.settings.method,
          weightFormat: plan.settings.weightFormat,
          factorFormat: plan.settings.factorFormat,
          factorTiling: plan.settings.factorTiling,
          rank: plan.uniformRank,
          layers,
          reconstruction:
            'W_hat = W_q + (lqer_A @ lqer_B)^T for each layer N listed; W_q is stored under N in the source layout',
        }),
      },
      run.signal,
    );
  } finally {
    await files.close();
  }
  const path = run.output.path;
  return {
    target: quantLensTarget.id,
    path,
    files: [run.output.destination],
    layers,
    tensors: out.length,
    notes: ggmlNotes(plan),
  };
}
