/**
 * Positioned reads from checkpoint files. Checkpoints run to hundreds of GB, so nothing here ever
 * reads a whole file; every read names its offset and length and is checked against the file size
 * before anything is allocated.
 */
import { readSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { QuantLensError } from '../errors';

/** Anything tensor bytes can be read from: one file, or several files read as one (TF.js shards). */
export interface ByteRangeReader {
  readonly path: string;
  readonly size: number;
  /**
   * Exactly `length` bytes at `offset`. With `into` (at least `length` bytes long) they land there
   * and a view of it is returned: callers reuse a buffer, since fresh memory costs more to touch
   * than the read itself (about 4 ms per MB on the VMs we measure on).
   */
  read(offset: number, length: number, what?: string, into?: Uint8Array): Promise<Uint8Array>;
}

export class RandomAccessFile implements ByteRangeReader {
  private constructor(
    readonly path: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<RandomAccessFile> {
    const why = (e: unknown) => {
      const code = (e as NodeJS.ErrnoException).code;
      const plain: Record<string, string> = {
        ENOENT: 'no such file',
        EACCES: 'permission denied',
        EISDIR: 'is a folder',
        ENOTDIR: 'a part of the path is not a folder',
        ELOOP: 'too many levels of symbolic links',
      };
      return `cannot open: ${(code && plain[code]) ?? code ?? String(e)}`;
    };
    let size: number;
    try {
      const s = await stat(path);
      if (!s.isFile()) throw new QuantLensError('not-found', 'is not a regular file', path);
      size = s.size;
    } catch (e) {
      if (e instanceof QuantLensError) throw e;
      throw new QuantLensError('not-found', why(e), path);
    }
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (e) {
      throw new QuantLensError('not-found', why(e), path);
    }
    return new RandomAccessFile(path, size, handle);
  }

  private check(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new QuantLensError('malformed', `invalid range for ${what}: offset ${offset}, length ${length}`, this.path);
    }
    if (offset + length > this.size) {
      throw new QuantLensError(
        'malformed',
        `truncated: ${what} needs bytes ${offset}…${offset + length} but the file has ${this.size}`,
        this.path,
      );
    }
  }

  /** Reads exactly `length` bytes at `offset`, or throws a 'malformed' error naming what was expected. */
  async read(offset: number, length: number, what = 'data', into?: Uint8Array): Promise<Uint8Array> {
    this.check(offset, length, what);
    const buf = into ? into.subarray(0, length) : new Uint8Array(length);
    let done = 0;
    while (done < length) {
      // A single read is limited to 2 GiB; larger tensors arrive in several.
      const n = Math.min(length - done, 0x40000000);
      const { bytesRead } = await this.handle.read(buf, done, n, offset + done);
      if (bytesRead === 0) throw new QuantLensError('malformed', `unexpected end of file reading ${what}`, this.path);
      done += bytesRead;
    }
    return buf;
  }

  /**
   * Synchronous twin of `read`, for parsers that walk many small fields (protobuf, GGUF headers,
   * pickles) where an await per field would cost more than the read itself. Readers run in a
   * worker thread or the CLI, never on the extension host's main thread.
   */
  readSync(offset: number, length: number, what = 'data'): Uint8Array {
    this.check(offset, length, what);
    const buf = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = Math.min(length - done, 0x40000000);
      const bytesRead = readSync(this.handle.fd, buf, done, n, offset + done);
      if (bytesRead === 0) throw new QuantLensError('malformed', `unexpected end of file reading ${what}`, this.path);
      done += bytesRead;
    }
    return buf;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/**
 * A read-through window over a file for sequential parsers: small reads near each other are served
 * from one buffered block, and a read far away (past a skipped tensor) refills it.
 */
export class WindowedFile {
  private window: Uint8Array = new Uint8Array(0);
  private windowStart = 0;

  constructor(
    readonly file: RandomAccessFile,
    private readonly windowBytes = 1 << 20,
  ) {}

  get path(): string {
    return this.file.path;
  }

  get size(): number {
    return this.file.size;
  }

  /** Exactly `length` bytes at `offset`; may be a view into the window, valid until the next call. */
  bytes(offset: number, length: number, what = 'data'): Uint8Array {
    const rel = offset - this.windowStart;
    if (rel >= 0 && rel + length <= this.window.length) return this.window.subarray(rel, rel + length);
    if (length > this.windowBytes) return this.file.readSync(offset, length, what);
    // Reading on from the window fills a full window; landing past a skipped blob (an inline
    // tensor) reads a small one, since only the next few fields' headers are wanted there.
    const onward = rel >= 0 && rel <= this.window.length;
    const want = onward ? this.windowBytes : SKIP_WINDOW;
    const n = Math.min(want, this.file.size - offset);
    this.window = this.file.readSync(offset, Math.max(n, length), what);
    this.windowStart = offset;
    return this.window.subarray(0, length);
  }
}

const SKIP_WINDOW = 64 << 10;

/** Several files read as one byte sequence (TF.js weight shards are cut at arbitrary bytes). */
export class ConcatenatedFiles implements ByteRangeReader {
  readonly size: number;
  private readonly starts: number[] = [];

  constructor(
    readonly path: string,
    private readonly parts: RandomAccessFile[],
  ) {
    let n = 0;
    for (const p of parts) {
      this.starts.push(n);
      n += p.size;
    }
    this.size = n;
  }

  async read(offset: number, length: number, what = 'data', into?: Uint8Array): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new QuantLensError('malformed', `invalid range for ${what}: offset ${offset}, length ${length}`, this.path);
    }
    if (offset + length > this.size) {
      throw new QuantLensError(
        'malformed',
        `truncated: ${what} needs bytes ${offset}…${offset + length} of the shards but they hold ${this.size}`,
        this.path,
      );
    }
    const out = into ? into.subarray(0, length) : new Uint8Array(length);
    let done = 0;
    for (let i = 0; i < this.parts.length && done < length; i++) {
      const start = this.starts[i]!;
      const part = this.parts[i]!;
      const at = offset + done;
      if (at >= start + part.size || at < start) continue;
      const n = Math.min(length - done, start + part.size - at);
      await part.read(at - start, n, what, out.subarray(done, done + n));
      done += n;
    }
    return out;
  }
}
