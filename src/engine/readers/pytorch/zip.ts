/**
 * The zip container of torch.save (since PyTorch 1.6): a central directory listing
 * <archive>/data.pkl, <archive>/data/<key> storages and a few small records. torch writes every
 * entry stored (uncompressed) and 64-byte aligned, so a tensor's bytes are read in place at the
 * entry's data offset. Zip64 records are followed for checkpoints over 4 GB.
 */
import { inflateRawSync } from 'node:zlib';
import { QuantLensError } from '../../errors';
import type { RandomAccessFile } from '../fileAccess';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate. */
  method: number;
  compressedSize: number;
  size: number;
  /** Offset of the local file header. */
  headerOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
/** The central directory of a state dict is small; this cap stops a crafted size from allocating. */
const MAX_CENTRAL_DIRECTORY = 256 << 20;

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export class ZipArchive {
  private constructor(
    readonly file: RandomAccessFile,
    readonly entries: Map<string, ZipEntry>,
  ) {}

  private static fail(file: RandomAccessFile, why: string): never {
    throw new QuantLensError('malformed', `zip: ${why}`, file.path);
  }

  static async open(file: RandomAccessFile): Promise<ZipArchive> {
    if (file.size < 22) ZipArchive.fail(file, 'file too short to be a zip archive');
    // The end-of-central-directory record sits in the last 22 + up to 65535 (comment) bytes.
    const tailLen = Math.min(file.size, 22 + 0xffff);
    const tail = await file.read(file.size - tailLen, tailLen, 'zip end record');
    const t = dv(tail);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (t.getUint32(i, true) === EOCD_SIG) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) ZipArchive.fail(file, 'no end-of-central-directory record (truncated or not a zip)');
    let count = t.getUint16(eocd + 10, true);
    let cdSize = t.getUint32(eocd + 12, true);
    let cdOffset = t.getUint32(eocd + 16, true);
    const eocdAbs = file.size - tailLen + eocd;
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      if (eocdAbs < 20) ZipArchive.fail(file, 'zip64 locator missing');
      const loc = dv(await file.read(eocdAbs - 20, 20, 'zip64 locator'));
      if (loc.getUint32(0, true) !== ZIP64_LOCATOR_SIG) ZipArchive.fail(file, 'zip64 locator missing');
      const z64Offset = Number(loc.getBigUint64(8, true));
      const z = dv(await file.read(z64Offset, 56, 'zip64 end record'));
      if (z.getUint32(0, true) !== ZIP64_EOCD_SIG) ZipArchive.fail(file, 'bad zip64 end record');
      count = Number(z.getBigUint64(32, true));
      cdSize = Number(z.getBigUint64(40, true));
      cdOffset = Number(z.getBigUint64(48, true));
    }
    if (!Number.isSafeInteger(cdOffset) || !Number.isSafeInteger(cdSize) || cdOffset + cdSize > file.size) {
      ZipArchive.fail(file, `central directory (${cdSize} bytes at ${cdOffset}) lies outside the file`);
    }
    if (cdSize > MAX_CENTRAL_DIRECTORY) {
      throw new QuantLensError('too-large', `zip: central directory of ${cdSize} bytes`, file.path);
    }
    if (count * 46 > cdSize) ZipArchive.fail(file, `${count} entries cannot fit in a ${cdSize}-byte central directory`);
    const cd = await file.read(cdOffset, cdSize, 'zip central directory');
    const c = dv(cd);
    const entries = new Map<string, ZipEntry>();
    const names = new TextDecoder('utf-8');
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || c.getUint32(p, true) !== CENTRAL_SIG) {
        ZipArchive.fail(file, `central directory entry ${i} is damaged`);
      }
      const method = c.getUint16(p + 10, true);
      let compressedSize = c.getUint32(p + 20, true);
      let size = c.getUint32(p + 24, true);
      const nameLen = c.getUint16(p + 28, true);
      const extraLen = c.getUint16(p + 30, true);
      const commentLen = c.getUint16(p + 32, true);
      let headerOffset = c.getUint32(p + 42, true);
      if (p + 46 + nameLen + extraLen + commentLen > cd.length)
        ZipArchive.fail(file, `central directory entry ${i} is cut short`);
      const name = names.decode(cd.subarray(p + 46, p + 46 + nameLen));
      // Zip64 extra field: the 64-bit values, in order, of the fields that hold 0xFFFFFFFF.
      let e = p + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = c.getUint16(e, true);
        const len = c.getUint16(e + 2, true);
        if (e + 4 + len > extraEnd) break;
        if (id === 0x0001) {
          let q = e + 4;
          const next = () => {
            if (q + 8 > e + 4 + len) ZipArchive.fail(file, `zip64 field of "${name}" is cut short`);
            const v = Number(c.getBigUint64(q, true));
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (headerOffset === 0xffffffff) headerOffset = next();
        }
        e += 4 + len;
      }
      if (entries.has(name)) ZipArchive.fail(file, `two entries are named "${name}"`);
      entries.set(name, { name, method, compressedSize, size, headerOffset });
      p += 46 + nameLen + extraLen + commentLen;
    }
    return new ZipArchive(file, entries);
  }

  /** Absolute offset of an entry's data, past its local header (whose extra field torch uses for alignment). */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const h = dv(await this.file.read(entry.headerOffset, 30, `local header of "${entry.name}"`));
    if (h.getUint32(0, true) !== LOCAL_SIG) ZipArchive.fail(this.file, `local header of "${entry.name}" is damaged`);
    const start = entry.headerOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
    if (start + entry.compressedSize > this.file.size) {
      ZipArchive.fail(this.file, `"${entry.name}" runs past the end of the file (truncated?)`);
    }
    return start;
  }

  /** A small entry's whole content (data.pkl, version records), inflating if needed, up to `maxBytes`. */
  async readEntry(entry: ZipEntry, maxBytes: number): Promise<Uint8Array> {
    if (entry.size > maxBytes) {
      throw new QuantLensError(
        'too-large',
        `zip entry "${entry.name}" is ${entry.size} bytes, over ${maxBytes}`,
        this.file.path,
      );
    }
    const start = await this.dataOffset(entry);
    const raw = await this.file.read(start, entry.compressedSize, `"${entry.name}"`);
    if (entry.method === 0) {
      if (entry.compressedSize !== entry.size) ZipArchive.fail(this.file, `stored entry "${entry.name}" has two sizes`);
      return raw;
    }
    if (entry.method === 8) {
      try {
        return new Uint8Array(inflateRawSync(raw, { maxOutputLength: Math.max(1, maxBytes) }));
      } catch (e) {
        ZipArchive.fail(this.file, `cannot inflate "${entry.name}": ${(e as Error).message}`);
      }
    }
    throw new QuantLensError(
      'unsupported',
      `zip entry "${entry.name}" uses compression method ${entry.method}`,
      this.file.path,
    );
  }
}
