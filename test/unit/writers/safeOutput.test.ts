/**
 * The one way Quant Lens writes files: never over an input (through links, `..` or hard links),
 * only regular files, an existing file only with force and never a read-only one, complete files
 * under the real name only, nothing left behind on an error or a cancellation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isQuantLensError } from '../../../src/engine/errors';
import {
  checkOutputFile,
  checkOutputFolder,
  checkpointInputs,
  temporaryOutputs,
  writeOutputFile,
  writeOutputFolder,
  writeOutputText,
  type OutputRules,
} from '../../../src/engine/writers/safeOutput';

function workspace() {
  const dir = mkdtempSync(join(tmpdir(), 'ql-safe-'));
  const model = join(dir, 'model.safetensors');
  writeFileSync(model, 'MODEL');
  const stats = join(dir, 'stats.safetensors');
  writeFileSync(stats, 'STATS');
  const data = join(dir, 'images');
  mkdirSync(data);
  writeFileSync(join(data, 'a.png'), 'PNG');
  writeFileSync(join(data, 'labels.txt'), 'a.png\thello\n');
  const rules: OutputRules = {
    inputs: [
      { path: model, what: 'the checkpoint' },
      { path: stats, what: 'the calibration file' },
      { path: data, what: 'the calibration data' },
    ],
    option: '--out',
  };
  return { dir, model, stats, data, rules };
}

async function refused(p: Promise<unknown>, pattern: RegExp, file?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isQuantLensError(e), `a QuantLensError, got ${String(e)}`);
    assert.equal(e.code, 'bad-argument');
    if (file !== undefined) assert.equal(e.file, file);
    assert.match(e.message, pattern);
    return true;
  });
}

/** Names in a folder that are not the given ones (temporary files left behind would show here). */
function extra(dir: string, expected: string[]): string[] {
  return readdirSync(dir).filter((n) => !expected.includes(n));
}

test('an output that is an input, however it is named, is refused even with force', async () => {
  const w = workspace();
  const force = { ...w.rules, force: true };
  await refused(checkOutputFile(w.model, force), /--out is the checkpoint .*would destroy it/, w.model);
  await refused(checkOutputFile(join(w.data, '..', 'stats.safetensors'), force), /the calibration file/);
  const link = join(w.dir, 'link.safetensors');
  symlinkSync(w.model, link);
  await refused(checkOutputFile(link, force), /the checkpoint/);
  const hard = join(w.dir, 'hard.safetensors');
  linkSync(w.stats, hard);
  await refused(checkOutputFile(hard, force), /the calibration file/);
  const viaFolderLink = join(w.dir, 'again');
  symlinkSync(w.dir, viaFolderLink);
  await refused(checkOutputFile(join(viaFolderLink, 'model.safetensors'), force), /the checkpoint/);
  await refused(checkOutputFile(join(w.data, 'labels.txt'), force), /a file in the calibration data/);
  // A new name inside a data folder destroys nothing.
  const fresh = await checkOutputFile(join(w.data, 'new.safetensors'), w.rules);
  assert.equal(fresh.exists, false);
  assert.equal(readFileSync(w.model, 'utf8'), 'MODEL');
  assert.equal(readFileSync(w.stats, 'utf8'), 'STATS');
});

test('every shard of a checkpoint is an input', async () => {
  const w = workspace();
  const shards = [join(w.dir, 'model-00001-of-00002.safetensors'), join(w.dir, 'model-00002-of-00002.safetensors')];
  for (const s of shards) writeFileSync(s, 'SHARD');
  const index = join(w.dir, 'model.safetensors.index.json');
  writeFileSync(index, '{}');
  const rules = { inputs: checkpointInputs({ path: index, files: shards.map((path) => ({ path })) }), force: true };
  await refused(checkOutputFile(shards[1]!, rules), /a shard of the checkpoint/);
  await refused(checkOutputFile(index, rules), /is the checkpoint/);
});

test('only regular files or new names: folders, devices, FIFOs, broken links and missing folders are refused', async () => {
  const w = workspace();
  const force = { ...w.rules, force: true };
  await refused(checkOutputFile(w.dir, force), /is a folder; only regular files/);
  await refused(checkOutputFile(`${w.dir}/sub/`, force), /names a folder/);
  await refused(checkOutputFile('/dev/null', force), /is a device/);
  const fifo = join(w.dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  await refused(checkOutputFile(fifo, force), /is a FIFO/);
  const dangling = join(w.dir, 'dangling');
  symlinkSync(join(w.dir, 'nothing-here'), dangling);
  await refused(checkOutputFile(dangling, force), /symbolic link to nothing/);
  const missing = join(w.dir, 'no-such-folder', 'out.safetensors');
  await refused(checkOutputFile(missing, force), /the folder .*no-such-folder does not exist/, missing);
  const file = join(w.dir, 'file');
  writeFileSync(file, 'x');
  await refused(checkOutputFile(join(file, 'out'), force), /is not a folder/);
});

test('an existing output is replaced only with force, a read-only one never, and keeps its mode', async () => {
  const w = workspace();
  const out = join(w.dir, 'out.json');
  writeFileSync(out, 'OLD');
  chmodSync(out, 0o640);
  await refused(checkOutputFile(out, w.rules), /--out exists; pass --force to replace it/, out);
  await refused(checkOutputFile(out, { ...w.rules, forceHint: 'the overwrite setting' }), /pass the overwrite setting/);
  await writeOutputText(await checkOutputFile(out, { ...w.rules, force: true }), 'NEW');
  assert.equal(readFileSync(out, 'utf8'), 'NEW');
  assert.equal(statSync(out).mode & 0o777, 0o640);
  chmodSync(out, 0o444);
  await refused(checkOutputFile(out, { ...w.rules, force: true }), /is read-only/);
  assert.equal(readFileSync(out, 'utf8'), 'NEW');
  // Through a link to a file that is no input: the file is written, the link stays a link.
  const target = join(w.dir, 'target.txt');
  writeFileSync(target, 'T');
  const link = join(w.dir, 'link.txt');
  symlinkSync(target, link);
  await writeOutputText(await checkOutputFile(link, { ...w.rules, force: true }), 'THROUGH');
  assert.equal(readFileSync(target, 'utf8'), 'THROUGH');
});

test('a failed or cancelled write leaves the destination as it was and no temporary file', async () => {
  const w = workspace();
  const out = join(w.dir, 'out.bin');
  const checked = await checkOutputFile(out, w.rules);
  let seenTemporary: string[] = [];
  await assert.rejects(
    writeOutputFile(checked, async (sink) => {
      await sink.write(new Uint8Array(1000));
      seenTemporary = temporaryOutputs();
      throw new Error('producer failed');
    }),
    /producer failed/,
  );
  assert.equal(seenTemporary.length, 1, 'the temporary file is tracked while it is written');
  assert.match(seenTemporary[0]!, /\.out\.bin\.partial-\d+-[0-9a-f]+$/);
  assert.deepEqual(temporaryOutputs(), []);
  assert.equal(existsSync(out), false);
  assert.deepEqual(extra(w.dir, ['model.safetensors', 'stats.safetensors', 'images']), []);

  writeFileSync(out, 'KEEP');
  const controller = new AbortController();
  await assert.rejects(
    writeOutputFile(
      await checkOutputFile(out, { ...w.rules, force: true }),
      async (sink) => {
        await sink.write(new Uint8Array(10));
        controller.abort();
      },
      controller.signal,
    ),
    (e: unknown) => isQuantLensError(e) && e.code === 'cancelled',
  );
  assert.equal(readFileSync(out, 'utf8'), 'KEEP');
  assert.deepEqual(extra(w.dir, ['model.safetensors', 'stats.safetensors', 'images', 'out.bin']), []);
});

test('the rules are applied again before the rename: a file that appeared meanwhile is not replaced', async () => {
  const w = workspace();
  const out = join(w.dir, 'late.txt');
  const checked = await checkOutputFile(out, w.rules);
  await refused(
    writeOutputFile(checked, async (sink) => {
      await sink.write(Buffer.from('mine'));
      writeFileSync(out, 'THEIRS');
    }),
    /exists; pass --force/,
  );
  assert.equal(readFileSync(out, 'utf8'), 'THEIRS');
  assert.deepEqual(extra(w.dir, ['model.safetensors', 'stats.safetensors', 'images', 'late.txt']), []);
});

test('writeAt patches bytes written earlier', async () => {
  const w = workspace();
  const out = join(w.dir, 'patched.bin');
  await writeOutputFile(await checkOutputFile(out, w.rules), async (sink) => {
    await sink.write(Buffer.from('xxxx-body'));
    await sink.writeAt(Buffer.from('HEAD'), 0);
    assert.equal(sink.bytesWritten, 9);
  });
  assert.equal(readFileSync(out, 'utf8'), 'HEAD-body');
});

test('a folder output appears whole; an existing one is written into only with force, same names only', async () => {
  const w = workspace();
  const out = join(w.dir, 'export');
  const files = async (f: { writeText(n: string, t: string): Promise<void> }) => {
    await f.writeText('model.safetensors', 'Q');
    await f.writeText('sub/adapter.json', '{}');
  };
  await writeOutputFolder(await checkOutputFolder(out, w.rules), files);
  assert.equal(readFileSync(join(out, 'model.safetensors'), 'utf8'), 'Q');
  assert.equal(readFileSync(join(out, 'sub', 'adapter.json'), 'utf8'), '{}');
  assert.deepEqual(extra(w.dir, ['model.safetensors', 'stats.safetensors', 'images', 'export']), []);

  await refused(checkOutputFolder(out, w.rules), /not empty; pass --force/);
  writeFileSync(join(out, 'README.md'), 'mine');
  await writeOutputFolder(await checkOutputFolder(out, { ...w.rules, force: true }), async (f) => {
    await f.writeText('model.safetensors', 'Q2');
  });
  assert.equal(readFileSync(join(out, 'model.safetensors'), 'utf8'), 'Q2');
  assert.equal(readFileSync(join(out, 'README.md'), 'utf8'), 'mine', 'other files are left alone');

  // A failure part-way leaves the folder as it was.
  await assert.rejects(
    writeOutputFolder(await checkOutputFolder(out, { ...w.rules, force: true }), async (f) => {
      await f.writeText('model.safetensors', 'Q3');
      throw new Error('second file failed');
    }),
    /second file failed/,
  );
  assert.equal(readFileSync(join(out, 'model.safetensors'), 'utf8'), 'Q2');
  assert.deepEqual(extra(w.dir, ['model.safetensors', 'stats.safetensors', 'images', 'export']), []);
  await assert.rejects(
    writeOutputFolder(await checkOutputFolder(join(w.dir, 'x'), w.rules), (f) => f.writeText('../escape', '')),
    /relative name inside the folder/,
  );
  assert.equal(existsSync(join(w.dir, 'escape')), false);
});

test('a folder output may not be, hold, or lie inside an input', async () => {
  const w = workspace();
  const force = { ...w.rules, force: true };
  await refused(checkOutputFolder(w.dir, force), /holds the checkpoint/);
  await refused(checkOutputFolder(w.data, force), /is the calibration data/);
  await refused(checkOutputFolder(join(w.data, 'out'), force), /inside the calibration data/);
  await refused(checkOutputFolder(w.model, force), /is a file; name a folder/);
  await refused(checkOutputFolder(join(w.dir, 'missing', 'out'), force), /does not exist/);
});

test('file system errors while writing name the output and the reason', async () => {
  // A file size limit makes the write fail with EFBIG (SIGXFSZ is ignored by Node): run in a shell with ulimit -f.
  const w = workspace();
  const out = join(w.dir, 'big.bin');
  const script = `
    const { checkOutputFile, writeOutputFile } = require(${JSON.stringify(join(import.meta.dirname, '../../../src/engine/writers/safeOutput.ts'))});
    (async () => {
      const o = await checkOutputFile(${JSON.stringify(out)}, { inputs: [], option: '--out' });
      try { await writeOutputFile(o, async (s) => { for (let i = 0; i < 64; i++) await s.write(new Uint8Array(65536)); }); }
      catch (e) { console.log(e.code + '|' + e.file + '|' + e.message); }
    })();`;
  const r = execFileSync(
    'sh',
    ['-c', `ulimit -f 256; exec "${process.execPath}" --import tsx -e '${script.replace(/'/g, "'\\''")}'`],
    {
      encoding: 'utf8',
    },
  );
  assert.match(r, new RegExp(`^bad-argument\\|${out}\\|.*cannot write --out: the file size limit was reached`));
  assert.deepEqual(extra(w.dir, ['model.safetensors', 'stats.safetensors', 'images']), []);
});
