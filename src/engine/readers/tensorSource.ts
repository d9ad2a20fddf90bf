/**
 * Decoding stored tensors to float32 a chunk at a time, so that reading a layer costs memory for
 * that layer's float32 values plus one chunk of raw bytes, never a second full copy.
 */
import { throwIfCancelled } from '../errors';
import { ELEMENT_BITS, LITTLE_ENDIAN, decodeInto, type ElementType } from './dtypes';
import type { ByteRangeReader } from './fileAccess';

/** How a run of stored blocks turns into float32 values. Plain dtypes are blocks of one element. */
export interface BlockCodec {
  /** Elements per block (1 for plain types, 2 for 4-bit types, 32 or 256 for GGML quants). */
  readonly blockElements: number;
  readonly blockBytes: number;
  /** The stored bytes are the float32 values themselves (F32 on a little-endian host): read in place. */
  readonly raw?: boolean;
  decode(bytes: Uint8Array, out: Float32Array, at: number, blocks: number): void;
}

const elementCodecs = new Map<ElementType, BlockCodec>();

export function elementCodec(t: ElementType): BlockCodec {
  let c = elementCodecs.get(t);
  if (!c) {
    const bits = ELEMENT_BITS[t];
    if (bits % 8 !== 0 && bits !== 4) throw new Error(`no block codec for ${bits}-bit ${t}`);
    const blockElements = bits === 4 ? 2 : 1;
    c = {
      blockElements,
      blockBytes: (bits * blockElements) / 8,
      raw: t === 'F32' && LITTLE_ENDIAN,
      decode: (bytes, out, at, blocks) => decodeInto(t, bytes, out, at, blocks * blockElements),
    };
    elementCodecs.set(t, c);
  }
  return c;
}

export interface TensorSource {
  /** Elements in the whole tensor. */
  readonly count: number;
  /** True when reading part of the tensor costs only that part (chunked reads are then cheap). */
  readonly partial?: boolean;
  /**
   * Decodes elements [start, start + count) to float32. `onValues` sees every part of the result
   * once, as it lands (a source reading in one piece passes the whole): a pass over values just
   * read costs a fraction of a pass over memory first touched later (see BlockSource).
   * `into`, when it holds at least `count` values, is storage the caller reuses: a source that
   * decodes in place returns a view of it; one that builds its values otherwise ignores it.
   */
  readElements(
    start: number,
    count: number,
    signal?: AbortSignal,
    onValues?: ValuesVisitor,
    into?: Float32Array,
  ): Promise<Float32Array>;
}

/**
 * Sees a run of a tensor's decoded values as it lands (parts arrive in no particular order):
 * `values` is `result.subarray(at, at + values.length)` of the array being filled.
 */
export type ValuesVisitor = (values: Float32Array, at: number, result: Float32Array) => void;

/** Raw bytes read per step; big enough to amortise a syscall, small next to a 7B layer. */
const CHUNK_BYTES = 8 << 20;
/** Chunks read at once (see readElements). */
const READ_LANES = 4;

/** A tensor stored as consecutive blocks starting at `offset` in `reader`. */
export class BlockSource implements TensorSource {
  readonly partial = true;

  constructor(
    private readonly reader: ByteRangeReader,
    private readonly offset: number,
    private readonly codec: BlockCodec,
    readonly count: number,
    private readonly what: string,
  ) {}

  async readElements(
    start: number,
    count: number,
    signal?: AbortSignal,
    onValues?: ValuesVisitor,
    into?: Float32Array,
  ): Promise<Float32Array> {
    if (start < 0 || count < 0 || start + count > this.count) {
      throw new RangeError(`elements ${start}…${start + count} outside a tensor of ${this.count}`);
    }
    const { blockElements: be, blockBytes: bb } = this.codec;
    const firstBlock = Math.floor(start / be);
    const endBlock = Math.ceil((start + count) / be);
    const aligned = start % be === 0 && count % be === 0;
    // Misaligned requests (a 4-bit tensor with an odd count, a slice inside a GGML block) decode
    // whole blocks into a scratch array and copy the part asked for.
    const blocks = endBlock - firstBlock;
    const out =
      aligned && into && into.length >= count
        ? into.subarray(0, count)
        : new Float32Array(aligned ? count : blocks * be);
    const blocksPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / bb));
    // Every chunk lands in memory touched once: the result itself when the bytes are the values,
    // else one scratch chunk per lane, reused (a fresh one per chunk doubled the memory first touched).
    const inPlace = this.codec.raw === true ? new Uint8Array(out.buffer, out.byteOffset, out.byteLength) : null;
    const chunks = Math.ceil(blocks / blocksPerChunk);
    // Several reads in flight: the kernel's copy into fresh pages (first-touch faults dominate a
    // large read here) then runs on both cores, and a decode overlaps the other lanes' reads.
    // Measured on a 235 MB F32 layer: 0.72–0.82 s with one read at a time, 0.37–0.45 s with two.
    // The first pass over the values in JS still costs about 1.7 ms per MB (0.4 later), so a
    // visitor runs on each chunk as it lands, beside the other lanes' reads: reading that layer
    // and counting its non-finite values took 0.82 s one after the other, 0.67–0.75 s overlapped
    // with four lanes (0.69–0.75 s with two).
    const visit = aligned ? onValues : undefined;
    const lanes = Math.min(READ_LANES, chunks);
    let failed = false;
    const lane = async (first: number): Promise<void> => {
      const scratch = inPlace ? null : new Uint8Array(Math.min(blocks, blocksPerChunk) * bb);
      for (let c = first; c < chunks && !failed; c += lanes) {
        throwIfCancelled(signal);
        const b = c * blocksPerChunk;
        const n = Math.min(blocksPerChunk, blocks - b);
        const at = this.offset + (firstBlock + b) * bb;
        if (inPlace) await this.reader.read(at, n * bb, this.what, inPlace.subarray(b * bb, (b + n) * bb));
        else this.codec.decode(await this.reader.read(at, n * bb, this.what, scratch!), out, b * be, n);
        visit?.(out.subarray(b * be, (b + n) * be), b * be, out);
      }
    };
    // A lane that fails stops the other at its next chunk (the caller may close the file next).
    await Promise.all(
      Array.from({ length: lanes }, (_, i) =>
        lane(i).catch((e: unknown) => {
          failed = true;
          throw e;
        }),
      ),
    );
    if (aligned) return out;
    const skip = start - firstBlock * be;
    const part = out.slice(skip, skip + count);
    onValues?.(part, 0, part);
    return part;
  }
}
