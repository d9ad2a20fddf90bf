/**
 * GGUF (llama.cpp) checkpoints as a Checkpoint. Dims are listed in ggml order (innermost first)
 * and reversed into row-major order, so a linear weight with ne = [in, out] reads as [out, in].
 * Quantized weights dequantize to float32: re-quantizing an already quantized source is worth
 * inspecting too.
 */
import { elementCount, type Checkpoint, type CheckpointReader, type TensorInfo } from './checkpoint';
import { discoverLinearLayers } from './discovery';
import { RandomAccessFile } from './fileAccess';
import { GGML_TYPES, type GgmlType } from './gguf/ggmlTypes';
import { formatGgufValue, readGgufHeader, type GgufTensorInfo } from './gguf/ggufHeader';
import { TableCheckpoint, type StoredTensor } from './tableCheckpoint';
import { BlockSource, type BlockCodec } from './tensorSource';

const DEQUANTIZED = Object.values(GGML_TYPES)
  .filter((t) => t.dequantize)
  .map((t) => t.name)
  .join(', ');

/** ggmlTypes stays free of the file readers (webviews import the type table through the formats). */
function ggmlCodec(t: GgmlType): BlockCodec | null {
  const dequantize = t.dequantize;
  if (!dequantize) return null;
  return { blockElements: t.blockElements, blockBytes: t.blockBytes, decode: dequantize };
}

function stored(file: RandomAccessFile, t: GgufTensorInfo): StoredTensor {
  const codec = t.type ? ggmlCodec(t.type) : null;
  const count = elementCount(t.dims);
  const dtype = t.type?.name ?? `ggml type ${t.typeId}`;
  const decodable: TensorInfo['decodable'] = codec
    ? true
    : {
        reason: t.type
          ? `${dtype} is listed but not dequantized by Quant Lens (supported: ${DEQUANTIZED})`
          : `unknown ggml type ${t.typeId}: listed, but its size and values cannot be told`,
      };
  return {
    info: {
      name: t.name,
      dtype,
      shape: [...t.dims].reverse(),
      storedDims: t.dims,
      file: file.path,
      byteLength: t.byteLength,
      offset: t.offset,
      decodable,
    },
    source: codec ? new BlockSource(file, t.offset, codec, count, `tensor "${t.name}"`) : null,
  };
}

export async function openGguf(path: string): Promise<Checkpoint> {
  const file = await RandomAccessFile.open(path);
  try {
    const header = readGgufHeader(file);
    const metadata: Record<string, string> = { 'gguf.version': String(header.version) };
    for (const [k, v] of header.metadata) metadata[k] = formatGgufValue(v);
    const arch = header.metadata.get('general.architecture');
    const architecture = typeof arch === 'string' ? arch : null;
    const tensors = header.tensors.map((t) => stored(file, t));
    const unknown = header.tensors.filter((t) => !t.type).map((t) => t.name);
    const { family, layers } = discoverLinearLayers(
      tensors.map((t) => t.info),
      { architecture, convention: 'gguf' },
    );
    return new TableCheckpoint({
      format: 'gguf',
      path,
      files: [{ path, size: file.size }],
      metadata,
      architecture,
      family,
      tensors,
      linearLayers: layers,
      warnings: unknown.length ? [`${unknown.length} tensors have a ggml type Quant Lens does not know`] : [],
      close: () => file.close(),
    });
  } catch (e) {
    await file.close();
    throw e;
  }
}

export const ggufReader: CheckpointReader = {
  id: 'gguf',
  format: 'gguf',
  label: 'GGUF',
  fileNames: ['*.gguf'],
  editor: 'default',
  inFolder: { any: ['*.gguf'], what: 'GGUF' },
  // The magic "GGUF".
  sniff: (b) => b.length >= 4 && b[0] === 0x47 && b[1] === 0x47 && b[2] === 0x55 && b[3] === 0x46,
  open: openGguf,
};
