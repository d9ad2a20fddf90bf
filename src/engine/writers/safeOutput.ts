/**
 * Every file Quant Lens writes goes through here, so that no command can destroy what it reads or
 * leave a half-written file behind:
 *
 * - `checkOutputFile` / `checkOutputFolder` refuse, before any work starts, an output that is (or
 *   resolves to, through symbolic links, `..` or a hard link) one of the command's inputs, or lies
 *   inside an input folder; anything but a regular file (a folder, a device, a FIFO, a socket, a
 *   broken link); an existing file without `force`, and a read-only one even with it; a folder
 *   that does not exist or cannot be written in. The refusal is a QuantLensError naming the path,
 *   the option and the reason (CLI exit 2).
 * - `writeOutputFile` / `writeOutputFolder` write under a temporary name in the destination's
 *   folder (created exclusively), fsync, check the destination again, and rename into place, so the
 *   real name only ever holds a complete file. Errors of the file system (full disk, file size
 *   limit, permissions) become QuantLensErrors naming the output; the temporary file is removed.
 * - Temporary paths are tracked while they exist. `removeTemporaryOutputs` deletes them
 *   synchronously; the CLI calls it on SIGINT / SIGTERM / SIGHUP, the extension host on exit, and a
 *   worker thread reports its paths to the pool (`onTemporaryOutput`) so that a worker terminated
 *   in mid-write, or the window closing, leaves nothing behind either.
 */
import { closeSync, fsyncSync, openSync, rmSync, type Stats } from 'node:fs';
import {
  constants,
  access,
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rm,
  stat,
  type FileHandle,
} from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { QuantLensError, throwIfCancelled } from '../errors';

/** A file or folder the command reads; `what` says what it is in messages ("the checkpoint"). */
export type OutputInput = string | { path: string; what: string };

export interface OutputRules {
  /** Everything the command reads: the output may be none of these, nor a file inside an input folder. */
  inputs: readonly OutputInput[];
  /** Replace an existing output (a writable regular file; for a folder output, its same-named files). */
  force?: boolean;
  /** How the user named this output, for messages: "--out", "--html", "the report". */
  option?: string;
  /** How the user asks for replacement, for messages; default "--force". */
  forceHint?: string;
}

/** A checked destination: only these can be written. */
export interface CheckedOutput {
  readonly kind: 'file' | 'folder';
  /** The path as the user gave it (for messages). */
  readonly path: string;
  /** Where the bytes go: the real path after following links. */
  readonly destination: string;
  /** Whether a file (or folder) exists there now. */
  readonly exists: boolean;
  readonly rules: OutputRules;
}

/** Where bytes are written; errors of the file system come out as QuantLensErrors naming the output. */
export interface OutputSink {
  write(bytes: Uint8Array): Promise<void>;
  /** Writes at a position (patching a header written earlier); does not move the append position. */
  writeAt(bytes: Uint8Array, position: number): Promise<void>;
  /** Bytes appended so far. */
  readonly bytesWritten: number;
}

/** A folder output being written: each file goes into the temporary folder, by relative name. */
export interface OutputFolderSink {
  writeFile(name: string, write: (sink: OutputSink) => Promise<void>): Promise<void>;
  writeText(name: string, text: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Temporary paths

const temporary = new Set<string>();
let temporaryListener: ((path: string, alive: boolean) => void) | undefined;

/** A worker thread sets this to report its temporary paths to the pool that may terminate it. */
export function onTemporaryOutput(listener: ((path: string, alive: boolean) => void) | undefined): void {
  temporaryListener = listener;
}

/** Registers a temporary path that someone else created (the pool, for its workers' paths). */
export function trackTemporaryOutput(path: string, alive: boolean): void {
  if (alive) temporary.add(path);
  else temporary.delete(path);
  temporaryListener?.(path, alive);
}

/** The temporary paths that exist now (tests, diagnostics). */
export function temporaryOutputs(): string[] {
  return [...temporary];
}

/** Deletes temporary outputs now, synchronously (signal and exit handlers); all of them by default. */
export function removeTemporaryOutputs(paths: Iterable<string> = temporary): void {
  for (const p of [...paths]) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // Nothing more can be done from an exit handler.
    }
    temporary.delete(p);
  }
}

function temporaryName(folder: string, base: string): string {
  return join(folder, `.${base}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
}

// ---------------------------------------------------------------------------------------------
// Checks

interface ResolvedInput {
  given: string;
  what: string;
  real: string;
  st: Stats | null;
}

async function statOrNull(path: string, follow = true): Promise<Stats | null> {
  try {
    return await (follow ? stat(path) : lstat(path));
  } catch {
    return null;
  }
}

async function resolveInputs(inputs: readonly OutputInput[]): Promise<ResolvedInput[]> {
  const out: ResolvedInput[] = [];
  for (const i of inputs) {
    const given = typeof i === 'string' ? i : i.path;
    const what = typeof i === 'string' ? 'an input of this command' : i.what;
    if (!given) continue;
    const abs = resolve(given);
    const real = await realpath(abs).catch(() => abs);
    out.push({ given, what, real, st: await statOrNull(real) });
  }
  return out;
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

function inside(folder: string, path: string): boolean {
  const r = relative(folder, path);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r);
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** How messages name the output: the option the user gave it with, else "the output". */
function named(rules: OutputRules): string {
  return rules.option ?? 'the output';
}

/** A refusal: `sentence` receives the output's name and says what is wrong with it. */
function refuse(o: { path: string; rules: OutputRules }, sentence: (name: string) => string): never {
  throw new QuantLensError('bad-argument', sentence(named(o.rules)), o.path);
}

function systemReason(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'disk quota exceeded';
    case 'EFBIG':
      return 'the file size limit was reached (ulimit -f)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOENT':
      return 'the folder does not exist (any more)';
    case 'ENOTDIR':
      return 'a part of the path is not a folder';
    case 'EISDIR':
      return 'is a folder';
    case 'EIO':
      return 'input/output error';
    case 'ENAMETOOLONG':
      return 'the name is too long';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many open files';
    default:
      return e.code ? `${e.code}: ${e.message}` : e.message;
  }
}

/** An error of the file system while writing `path`, as a QuantLensError naming it. */
export function outputError(e: unknown, o: { path: string; rules: OutputRules }): Error {
  if (e instanceof QuantLensError) return e;
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err === 'object' && typeof err.code === 'string') {
    return new QuantLensError('bad-argument', `cannot write ${named(o.rules)}: ${systemReason(err)}`, o.path);
  }
  return e instanceof Error ? e : new Error(String(e));
}

/** The destination folder must exist, be a folder and be writable. Returns its real path. */
async function checkFolder(o: { path: string; rules: OutputRules }, folder: string): Promise<string> {
  const st = await statOrNull(folder);
  if (!st) refuse(o, (n) => `cannot write ${n}: the folder ${folder} does not exist`);
  if (!st.isDirectory()) refuse(o, (n) => `cannot write ${n}: ${folder} is not a folder`);
  try {
    await access(folder, constants.W_OK);
  } catch (e) {
    refuse(o, (n) => `cannot write ${n} in the folder ${folder}: ${systemReason(e as NodeJS.ErrnoException)}`);
  }
  return realpath(folder);
}

function checkAgainstInputs(
  o: { path: string; rules: OutputRules },
  destination: string,
  st: Stats | null,
  inputs: ResolvedInput[],
): void {
  for (const i of inputs) {
    const same = destination === i.real || (st && i.st && !i.st.isDirectory() && sameFile(st, i.st));
    if (same) refuse(o, (n) => `${n} is ${i.what} (${i.given}): writing it would destroy it; choose another name`);
    if (i.st?.isDirectory() && st && inside(i.real, destination)) {
      refuse(o, (n) => `${n} is a file in ${i.what} (${i.given}), which this command reads; choose another name`);
    }
  }
}

/**
 * Checks that `path` may be written as a new or replaced regular file under `rules`. Call it
 * before the work that produces the file, so a refusal costs nothing; `writeOutputFile` checks
 * again just before the rename.
 */
export async function checkOutputFile(path: string, rules: OutputRules): Promise<CheckedOutput> {
  const o = { path, rules };
  if (!path) refuse(o, (n) => `${n} is an empty file name`);
  if (/[/\\]$/.test(path)) refuse(o, (n) => `${n} names a folder; name the file to write`);
  const abs = resolve(path);
  const link = await statOrNull(abs, false);
  let destination: string;
  let st: Stats | null;
  if (link?.isSymbolicLink()) {
    st = await statOrNull(abs);
    if (!st) refuse(o, (n) => `${n} is a symbolic link to nothing`);
    destination = await realpath(abs);
  } else {
    st = link;
    destination = join(await checkFolder(o, dirname(abs)), basename(abs));
  }
  if (st) {
    const kind = kindOf(st);
    if (!st.isFile()) refuse(o, (n) => `${n} is ${kind}; only regular files are written`);
  }
  checkAgainstInputs(o, destination, st, await resolveInputs(rules.inputs));
  if (st) {
    if (!rules.force) refuse(o, (n) => `${n} exists; pass ${rules.forceHint ?? '--force'} to replace it`);
    if ((st.mode & 0o222) === 0) refuse(o, (n) => `${n} is read-only; it is not replaced`);
    if (link?.isSymbolicLink()) await checkFolder(o, dirname(destination));
  }
  return { kind: 'file', path, destination, exists: !!st, rules };
}

/**
 * Checks that `path` may be written as a folder of files: a new folder, an empty one, or (with
 * `force`) an existing one whose files of the same names are replaced — other files in it are left
 * alone, and no input may lie inside it.
 */
export async function checkOutputFolder(path: string, rules: OutputRules): Promise<CheckedOutput> {
  const o = { path, rules };
  if (!path) refuse(o, (n) => `${n} is an empty folder name`);
  const abs = resolve(normalize(path));
  const st = await statOrNull(abs);
  const link = await statOrNull(abs, false);
  if (link?.isSymbolicLink() && !st) refuse(o, (n) => `${n} is a symbolic link to nothing`);
  let destination: string;
  if (st) {
    const kind = st.isFile() ? 'a file' : kindOf(st);
    if (!st.isDirectory()) refuse(o, (n) => `${n} is ${kind}; name a folder to write into`);
    destination = await realpath(abs);
    await checkFolder(o, destination);
  } else {
    destination = join(await checkFolder(o, dirname(abs)), basename(abs));
  }
  const inputs = await resolveInputs(rules.inputs);
  for (const i of inputs) {
    if (destination === i.real) refuse(o, (n) => `${n} is ${i.what} (${i.given}): writing it would destroy it`);
    if (inside(destination, i.real)) {
      refuse(o, (n) => `${n} holds ${i.what} (${i.given}); write the output into another folder`);
    }
    if (i.st?.isDirectory() && inside(i.real, destination)) {
      refuse(o, (n) => `${n} is inside ${i.what} (${i.given}), which this command reads; choose another folder`);
    }
  }
  if (st && !rules.force && (await readdir(destination)).length > 0) {
    refuse(o, (n) => `${n} is a folder that is not empty; pass ${rules.forceHint ?? '--force'} to write into it`);
  }
  return { kind: 'folder', path, destination, exists: !!st, rules };
}

/** Checks a file name inside a folder output before it is replaced. */
async function checkFolderEntry(out: CheckedOutput, name: string): Promise<void> {
  const target = join(out.destination, name);
  const o = { path: join(out.path, name), rules: out.rules };
  const st = await statOrNull(target, false);
  if (!st) return;
  const kind = st.isSymbolicLink() ? 'a symbolic link' : kindOf(st);
  if (!st.isFile()) refuse(o, () => `${name} in ${named(out.rules)} is ${kind}; it is not replaced`);
  if (!out.rules.force)
    refuse(o, () => `${name} exists in ${named(out.rules)}; pass ${out.rules.forceHint ?? '--force'} to replace it`);
  if ((st.mode & 0o222) === 0) refuse(o, () => `${name} in ${named(out.rules)} is read-only; it is not replaced`);
  checkAgainstInputs(o, target, st, await resolveInputs(out.rules.inputs));
}

// ---------------------------------------------------------------------------------------------
// Writing

class FileSink implements OutputSink {
  bytesWritten = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly o: { path: string; rules: OutputRules },
  ) {}

  async write(bytes: Uint8Array): Promise<void> {
    try {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await this.fh.write(bytes, done, bytes.length - done);
        done += bytesWritten;
      }
      this.bytesWritten += bytes.length;
    } catch (e) {
      throw outputError(e, this.o);
    }
  }

  async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    try {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await this.fh.write(bytes, done, bytes.length - done, position + done);
        done += bytesWritten;
      }
    } catch (e) {
      throw outputError(e, this.o);
    }
  }
}

/** Writes one temporary file completely: exclusive create, the producer, fsync, close. */
async function writeTemporaryFile(
  tmp: string,
  o: { path: string; rules: OutputRules },
  mode: number | undefined,
  write: (sink: OutputSink) => Promise<void>,
): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(tmp, 'wx', mode ?? 0o666);
  } catch (e) {
    throw outputError(e, o);
  }
  try {
    await write(new FileSink(fh, o));
    await fh.sync().catch((e: unknown) => {
      throw outputError(e, o);
    });
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function syncFolder(folder: string): void {
  // Makes the rename durable; some file systems refuse to fsync a folder, which is harmless.
  try {
    const fd = openSync(folder, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* best effort */
  }
}

function asChecked(out: CheckedOutput, kind: 'file' | 'folder'): CheckedOutput {
  if (out.kind !== kind) throw new Error(`a ${out.kind} output written as a ${kind}`);
  return out;
}

/**
 * Writes a checked output file: the producer appends bytes to the sink; the file appears under its
 * real name only when complete. On any error or cancellation nothing is left behind.
 */
export async function writeOutputFile(
  target: CheckedOutput,
  write: (sink: OutputSink) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const out = asChecked(target, 'file');
  const existing = await statOrNull(out.destination);
  const tmp = temporaryName(dirname(out.destination), basename(out.destination));
  // Tracked before it exists: a signal can arrive between the file's creation and open's callback.
  trackTemporaryOutput(tmp, true);
  try {
    throwIfCancelled(signal);
    await writeTemporaryFile(tmp, out, existing ? existing.mode & 0o7777 : undefined, write);
    throwIfCancelled(signal);
    // The world may have changed during a long job: the same rules once more, then the rename.
    const again = await checkOutputFile(out.path, out.rules);
    try {
      await rename(tmp, again.destination);
    } catch (e) {
      throw outputError(e, out);
    }
    syncFolder(dirname(again.destination));
  } finally {
    await rm(tmp, { force: true }).catch(() => undefined);
    trackTemporaryOutput(tmp, false);
  }
}

/** Writes a checked output file holding `text` (UTF-8). */
export async function writeOutputText(target: CheckedOutput, text: string, signal?: AbortSignal): Promise<void> {
  await writeOutputFile(target, (sink) => sink.write(Buffer.from(text, 'utf8')), signal);
}

function checkEntryName(name: string): string {
  const n = normalize(name);
  if (!name || isAbsolute(name) || n === '.' || n.split(sep).includes('..')) {
    throw new Error(`output folder entry "${name}" must be a relative name inside the folder`);
  }
  return n;
}

/**
 * Writes a checked folder output: the producer writes its files into a temporary folder beside the
 * destination. A new destination appears by one rename with all its files; into an existing one
 * (empty, or with force) each file is renamed into place, so every name holds a complete file.
 */
export async function writeOutputFolder(
  target: CheckedOutput,
  write: (folder: OutputFolderSink) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const out = asChecked(target, 'folder');
  const parent = dirname(out.destination);
  const tmp = temporaryName(parent, basename(out.destination));
  const names: string[] = [];
  trackTemporaryOutput(tmp, true);
  try {
    throwIfCancelled(signal);
    try {
      await mkdir(tmp, { mode: 0o777 });
    } catch (e) {
      throw outputError(e, out);
    }
    const sink: OutputFolderSink = {
      writeFile: async (name, produce) => {
        throwIfCancelled(signal);
        const n = checkEntryName(name);
        if (names.includes(n)) throw new Error(`output folder entry "${n}" written twice`);
        const file = join(tmp, n);
        const o = { path: join(out.path, n), rules: out.rules };
        if (dirname(n) !== '.') {
          await mkdir(dirname(file), { recursive: true }).catch((e: unknown) => {
            throw outputError(e, o);
          });
        }
        await writeTemporaryFile(file, o, undefined, produce);
        names.push(n);
      },
      writeText: (name, text) => sink.writeFile(name, (s) => s.write(Buffer.from(text, 'utf8'))),
    };
    await write(sink);
    throwIfCancelled(signal);
    const again = await checkOutputFolder(out.path, { ...out.rules, force: true });
    if (!again.exists) {
      syncFolder(tmp);
      try {
        await rename(tmp, again.destination);
      } catch (e) {
        throw outputError(e, out);
      }
    } else {
      for (const n of names) await checkFolderEntry(out, n);
      for (const n of names) {
        const dest = join(again.destination, n);
        try {
          if (dirname(n) !== '.') await mkdir(dirname(dest), { recursive: true });
          await rename(join(tmp, n), dest);
        } catch (e) {
          throw outputError(e, { path: join(out.path, n), rules: out.rules });
        }
      }
      syncFolder(again.destination);
    }
    syncFolder(parent);
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    trackTemporaryOutput(tmp, false);
  }
}

/** The inputs of a checkpoint: the path the user gave and every file its tensors come from. */
export function checkpointInputs(ckpt: { path: string; files: readonly { path: string }[] }): OutputInput[] {
  const what = ckpt.files.length > 1 ? 'a shard of the checkpoint' : 'the checkpoint';
  return [{ path: ckpt.path, what: 'the checkpoint' }, ...ckpt.files.map((f) => ({ path: f.path, what }))];
}
