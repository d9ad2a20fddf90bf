/**
 * An edited ONNX model is planned as a list of pieces: new bytes, or ranges of the original file
 * to copy unchanged. Both the rewriter (calibration outputs, replaced weights) and evaluation's
 * graph editor (rewired nodes) emit pieces; this module turns them into bytes or a file.
 */
import { open } from 'node:fs/promises';
import type { ByteRange } from '../protobuf/reader';
import { ProtoWriter } from '../protobuf/writer';
import type { OnnxModel } from './model';

/** A piece of the output: bytes to write, or a range of the original file to copy. */
export type Piece = Uint8Array | ByteRange;

export function isRange(p: Piece): p is ByteRange {
  return !(p instanceof Uint8Array);
}

export function piecesLength(pieces: readonly Piece[]): number {
  return pieces.reduce((a, p) => a + p.length, 0);
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  // Division, not shifts: lengths of large models pass 2³¹.
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** The key and length prefix of a length-delimited field whose payload is written separately. */
export function lengthPrefix(field: number, length: number): Uint8Array {
  return Uint8Array.from([...varint(field * 8 + 2), ...varint(length)]);
}

export function encoded(build: (w: ProtoWriter) => void): Uint8Array {
  const w = new ProtoWriter();
  build(w);
  return w.finish();
}

/** The whole model with its graph (ModelProto field 7) replaced by `graph`; every other field copied. */
export function withGraph(model: OnnxModel, graph: Piece[]): Piece[] {
  const out: Piece[] = [];
  for (const f of model.fields) {
    if (f.field !== 7) out.push(f.range);
    else out.push(lengthPrefix(7, piecesLength(graph)), ...graph);
  }
  return out;
}

/** The pieces as one buffer (for models that fit; onnxruntime takes the bytes directly). */
export async function assemblePieces(model: OnnxModel, pieces: readonly Piece[]): Promise<Uint8Array> {
  const w = new ProtoWriter();
  for (const p of pieces) w.raw(isRange(p) ? await model.reader.read(p.offset, p.length, 'model bytes') : p);
  return w.finish();
}

const COPY_CHUNK = 16 << 20;

/** Streams the pieces to `outPath`, copying untouched bytes a chunk at a time. */
export async function writePiecesToFile(model: OnnxModel, pieces: readonly Piece[], outPath: string): Promise<void> {
  const h = await open(outPath, 'w');
  try {
    for (const p of pieces) {
      if (!isRange(p)) {
        await h.write(p);
        continue;
      }
      for (let o = 0; o < p.length; o += COPY_CHUNK) {
        const n = Math.min(COPY_CHUNK, p.length - o);
        await h.write(await model.reader.read(p.offset + o, n, 'model bytes'));
      }
    }
  } finally {
    await h.close();
  }
}
