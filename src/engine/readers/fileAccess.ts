/**
 * Positioned reads from checkpoint files. Checkpoints run to hundreds of GB, so nothing here ever
 * reads a whole file; every read names its offset and length and is checked against the file size.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { QuantLensError } from '../errors';

export class RandomAccessFile {
  private constructor(
    readonly path: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<RandomAccessFile> {
    let size: number;
    try {
      const s = await stat(path);
      if (!s.isFile()) throw new QuantLensError('not-found', 'is not a regular file', path);
      size = s.size;
    } catch (e) {
      if (e instanceof QuantLensError) throw e;
      throw new QuantLensError('not-found', `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, path);
    }
    const handle = await open(path, 'r');
    return new RandomAccessFile(path, size, handle);
  }

  /** Reads exactly `length` bytes at `offset`, or throws a 'malformed' error naming what was expected. */
  async read(offset: number, length: number, what = 'data'): Promise<Uint8Array> {
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
    const buf = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) throw new QuantLensError('malformed', `unexpected end of file reading ${what}`, this.path);
      done += bytesRead;
    }
    return buf;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}
