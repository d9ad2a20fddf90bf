/**
 * A folder of analysis results that any number of processes — the editor's worker, CLI runs, the
 * tasks of a Slurm job array on other machines over a shared file system — read and write at once
 * (docs/result-store.md). Entries are content-addressed and immutable once written: each is written
 * to a temporary file beside its final name and renamed into place, so a reader sees a whole entry
 * or none, and two writers of the same entry leave one whole copy. An entry that fails its checksum
 * is reported, ignored and overwritten by the recomputed result.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QuantLensError } from '../errors';
import { CorruptEntry, decodeEntry, encodeEntry } from './codec';
import { trackTemporaryOutput } from '../writers/safeOutput';

export const STORE_FORMAT = 'quant-lens-store';
/** The folder layout and key scheme; a reader refuses a store with a higher version. */
export const STORE_VERSION = 1;
export const STORE_MARKER = 'quant-lens-store.json';

/** Temporary files of writers that died are removed after this long (no write takes an hour). */
const STALE_TEMP_MS = 60 * 60 * 1000;

export interface EntryMeta {
  /** What was hashed into the key, for people reading the store (never trusted on read). */
  keyInput: unknown;
  createdAt: string;
  /** Wall time of the computation that produced the value. */
  computeMs: number;
  producer: string;
}

export interface StoredEntry<T> {
  value: T;
  meta: EntryMeta;
  path: string;
}

export interface StoreOptions {
  /** Create the folder (and its marker) when it does not exist or is empty. Default true. */
  create?: boolean;
  /** Problems that do not stop the work: a corrupted entry, a read-only store. */
  warn?: (message: string) => void;
  producer?: string;
}

const isHexKey = (k: string) => /^[0-9a-f]{64}$/.test(k);

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

export class ResultStore {
  private readonly cleaned = new Set<string>();
  private readonlyWarned = false;

  private constructor(
    readonly dir: string,
    private readonly warn: (message: string) => void,
    private readonly producer: string,
  ) {}

  /** Opens (and by default creates) a store; bad folders are a 'bad-argument' naming the folder. */
  static async open(dir: string, opts: StoreOptions = {}): Promise<ResultStore> {
    const warn = opts.warn ?? (() => undefined);
    const create = opts.create ?? true;
    let st;
    try {
      st = await stat(dir);
    } catch (e) {
      if (errCode(e) !== 'ENOENT') throw new QuantLensError('not-found', `cannot read the store: ${String(e)}`, dir);
      if (!create) throw new QuantLensError('not-found', 'no result store here', dir);
    }
    if (st && !st.isDirectory())
      throw new QuantLensError('bad-argument', 'the store must be a folder, this is a file', dir);
    const marker = join(dir, STORE_MARKER);
    let text: string | null = null;
    try {
      text = await readFile(marker, 'utf8');
    } catch (e) {
      if (errCode(e) !== 'ENOENT' && errCode(e) !== 'ENOTDIR') throw e;
    }
    if (text !== null) {
      let m: { format?: unknown; version?: unknown };
      try {
        m = JSON.parse(text) as typeof m;
      } catch {
        throw new QuantLensError('malformed', `${STORE_MARKER} is not JSON`, dir);
      }
      if (m.format !== STORE_FORMAT)
        throw new QuantLensError('malformed', `${STORE_MARKER} is not a Quant Lens store marker`, dir);
      if (typeof m.version !== 'number' || m.version > STORE_VERSION) {
        throw new QuantLensError(
          'unsupported',
          `store version ${String(m.version)} was written by a newer Quant Lens (this one reads ${STORE_VERSION})`,
          dir,
        );
      }
    } else {
      if (!create) throw new QuantLensError('not-found', `not a Quant Lens result store (no ${STORE_MARKER})`, dir);
      // Never turn a folder with other things in it into a store: results would mix with a user's files.
      // (What another process creating the same store at this moment writes is not foreign.)
      const names = st ? await readdir(dir) : [];
      const foreign = names.filter((n) => n !== 'results' && n !== 'ids' && !n.startsWith(STORE_MARKER));
      if (foreign.length) {
        throw new QuantLensError(
          'bad-argument',
          `this folder is not empty and is not a Quant Lens result store (it holds ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}); give a new or empty folder`,
          dir,
        );
      }
      await mkdir(dir, { recursive: true });
      const body = JSON.stringify(
        { format: STORE_FORMAT, version: STORE_VERSION, layout: 'docs/result-store.md' },
        null,
        1,
      );
      await atomicWrite(marker, body + '\n');
    }
    return new ResultStore(dir, warn, opts.producer ?? 'quant-lens');
  }

  entryPath(kind: 'results' | 'ids', key: string): string {
    if (!isHexKey(key)) throw new Error(`store keys are 64 hex digits, got "${key}"`);
    return join(this.dir, kind, key.slice(0, 2), `${key}.${kind === 'results' ? 'qlr' : 'json'}`);
  }

  /** The entry for `key`, or null when there is none or it is damaged (then with a warning). */
  async get<T>(key: string, warn = this.warn): Promise<StoredEntry<T> | null> {
    const path = this.entryPath('results', key);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (e) {
      if (errCode(e) === 'ENOENT') return null;
      warn(`cannot read store entry ${path}: ${String(e)}; recomputing`);
      return null;
    }
    try {
      const { meta, value } = decodeEntry<EntryMeta>(buf, key);
      return { value: value as T, meta, path };
    } catch (e) {
      if (!(e instanceof CorruptEntry)) throw e;
      warn(`ignoring corrupted store entry ${path} (${e.message}); recomputing`);
      return null;
    }
  }

  /** Writes an entry; a store that cannot be written is reported once and the work goes on. */
  async put(
    key: string,
    value: unknown,
    meta: Omit<EntryMeta, 'createdAt' | 'producer'>,
    warn = this.warn,
  ): Promise<boolean> {
    const full: EntryMeta = { ...meta, createdAt: new Date().toISOString(), producer: this.producer };
    return this.write(this.entryPath('results', key), encodeEntry(key, full, value), warn);
  }

  /** A small JSON record (the identity index); null when missing or unreadable (with a warning). */
  async getRecord<T extends object>(key: string, warn = this.warn): Promise<T | null> {
    const path = this.entryPath('ids', key);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if (errCode(e) !== 'ENOENT') warn(`cannot read store record ${path}: ${String(e)}`);
      return null;
    }
    try {
      const v = JSON.parse(text) as unknown;
      if (v && typeof v === 'object' && (v as { key?: unknown }).key === key) return v as T;
    } catch {
      // fall through to the warning
    }
    warn(`ignoring corrupted store record ${path}`);
    return null;
  }

  async putRecord(key: string, record: object, warn = this.warn): Promise<boolean> {
    return this.write(this.entryPath('ids', key), JSON.stringify({ key, ...record }) + '\n', warn);
  }

  private async write(path: string, data: Buffer | string, warn: (message: string) => void): Promise<boolean> {
    const dir = join(path, '..');
    try {
      await mkdir(dir, { recursive: true });
      if (!this.cleaned.has(dir)) {
        this.cleaned.add(dir);
        await removeStaleTemps(dir);
      }
      await atomicWrite(path, data);
      return true;
    } catch (e) {
      if (!this.readonlyWarned) {
        this.readonlyWarned = true;
        warn(`cannot write to the result store ${this.dir} (${errCode(e) ?? String(e)}); results are not saved`);
      }
      return false;
    }
  }
}

const TEMP_SUFFIX = '.tmp';

/**
 * Write beside the target, then rename: on POSIX file systems (NFS included) the rename is atomic.
 * Not fsynced: an entry that a crash leaves damaged fails its checksum and is recomputed. The
 * temporary file is tracked so that SIGINT/SIGTERM (and a terminated worker) remove it.
 */
async function atomicWrite(path: string, data: Buffer | string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`;
  trackTemporaryOutput(tmp, true);
  try {
    await writeFile(tmp, data, { flag: 'wx' });
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  } finally {
    trackTemporaryOutput(tmp, false);
  }
}

async function removeStaleTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  const now = Date.now();
  for (const n of names) {
    if (!n.endsWith(TEMP_SUFFIX)) continue;
    const p = join(dir, n);
    try {
      if (now - (await stat(p)).mtimeMs > STALE_TEMP_MS) await unlink(p);
    } catch {
      // another process removed it, or it is not ours to remove: either way nothing to do
    }
  }
}
