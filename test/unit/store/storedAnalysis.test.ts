import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { StatsFile } from '../../../src/engine/calibration/statsFile';
import { analyzeLayer, type LayerInput } from '../../../src/engine/methods/analyzeLayer';
import type { AnalysisSettings, LayerAnalysis } from '../../../src/engine/methods/layerAnalysis';
import { ResultStore, STORE_MARKER } from '../../../src/engine/store/resultStore';
import { LayerResults, type StoredLayerAnalysis } from '../../../src/engine/store/storedAnalysis';
import type { Checkpoint } from '../../../src/engine/readers/checkpoint';
import { llamaLayerShapes, writeLlamaCheckpoint, writeLlamaStats } from '../../helpers/llamaFixture';

const LQER: AnalysisSettings = {
  method: 'lqer',
  weightFormat: 'mxint4',
  factorFormat: 'mxint8',
  factorTiling: 'last-dim',
  maxRank: 8,
};
const L2QER: AnalysisSettings = { ...LQER, method: 'l2qer' };
const NAMES = llamaLayerShapes().map(([n]) => n);

function strip(a: StoredLayerAnalysis): LayerAnalysis {
  const { stored: _stored, ...rest } = a;
  return rest;
}

/** Counts computations, and can stop the job after a number of them (an interrupted Analyze All). */
function counting(stopAfter = Infinity) {
  const calls: string[] = [];
  const controller = new AbortController();
  const compute = async (input: LayerInput, s: AnalysisSettings, o: { signal?: AbortSignal }) => {
    if (calls.length >= stopAfter) controller.abort();
    if (o.signal?.aborted) throw new Error('cancelled');
    calls.push(input.name);
    return analyzeLayer(input, s, o);
  };
  return { calls, compute, signal: controller.signal };
}

/** A checkpoint whose weight reads are counted. */
function countReads(ckpt: Checkpoint): { ckpt: Checkpoint; reads: string[] } {
  const reads: string[] = [];
  const wrapped = Object.create(ckpt) as Checkpoint;
  wrapped.readWeight = (name, signal) => {
    reads.push(name);
    return ckpt.readWeight(name, signal);
  };
  return { ckpt: wrapped, reads };
}

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'ql-store-'));
  const path = writeLlamaCheckpoint(dir);
  const statsPath = await writeLlamaStats(dir);
  return { dir, path, statsPath, storeDir: join(dir, 'store') };
}

test('a second analysis of the same layers comes from the store, equal to the first, reading no weight', async () => {
  const { path, statsPath, storeDir } = await setup();
  const store = await ResultStore.open(storeDir);
  const stats = await StatsFile.open(statsPath);
  const first = await openCheckpoint(path);
  const c1 = counting();
  const computed = [];
  const results1 = new LayerResults({ store, checkpoint: first, stats });
  for (const n of NAMES) computed.push(await results1.analyze(n, L2QER, { compute: c1.compute }));
  assert.deepEqual(c1.calls, NAMES);
  assert.ok(computed.every((a) => a.stored?.source === 'computed'));
  // The computed result is exactly what analyzeLayer gives without a store.
  const w = await first.readWeight(NAMES[2]!);
  const direct = await analyzeLayer(
    { name: NAMES[2]!, data: w.data, out: w.out, in: w.in, calibration: await stats.layerCalibration(NAMES[2]!, w.in) },
    L2QER,
  );
  assert.deepEqual({ ...strip(computed[2]!), timings: {} }, { ...direct, timings: {} });

  // A new process: a fresh store object and checkpoint.
  const { ckpt, reads } = countReads(await openCheckpoint(path));
  const c2 = counting();
  const results2 = new LayerResults({ store: await ResultStore.open(storeDir), checkpoint: ckpt, stats });
  for (const [i, n] of NAMES.entries()) {
    const a = await results2.analyze(n, L2QER, { compute: c2.compute });
    assert.equal(a.stored?.source, 'store');
    assert.deepEqual(strip(a), strip(computed[i]!));
  }
  assert.deepEqual(c2.calls, []);
  assert.deepEqual(reads, [], 'no weight read to answer from the store');
  await stats.close();
});

test('changed inputs never show stale results: weights, calibration and settings each recompute what they change', async () => {
  const { dir, path, statsPath, storeDir } = await setup();
  const store = await ResultStore.open(storeDir);
  const run = async (settings: AnalysisSettings, stats: string | null) => {
    const c = counting();
    const s = stats ? await StatsFile.open(stats) : null;
    const results = new LayerResults({ store, checkpoint: await openCheckpoint(path), stats: s });
    const out = [];
    for (const n of NAMES) out.push(await results.analyze(n, settings, { compute: c.compute }));
    await s?.close();
    return { calls: c.calls, out };
  };
  const base = await run(L2QER, statsPath);
  assert.equal(base.calls.length, NAMES.length);

  // Settings: another format, rank or spectra choice is another result.
  assert.equal((await run({ ...L2QER, weightFormat: 'mxint3' }, statsPath)).calls.length, NAMES.length);
  assert.equal((await run({ ...L2QER, maxRank: 4 }, statsPath)).calls.length, NAMES.length);
  assert.equal((await run({ ...L2QER, spectra: false }, statsPath)).calls.length, NAMES.length);
  // Spelling the defaults out changes nothing.
  assert.deepEqual((await run({ ...L2QER, spectra: true, weightFormat: 'mxint4:block=16' }, statsPath)).calls, []);

  // Calibration: new statistics (another seed) for the same layers.
  const otherStats = await writeLlamaStats(dir, { seed: 8, file: 'stats2.safetensors' });
  assert.equal((await run(L2QER, otherStats)).calls.length, NAMES.length);
  // The same statistics in a copied file: found by content.
  const copied = join(dir, 'stats-copy.safetensors');
  cpSync(statsPath, copied);
  assert.deepEqual((await run(L2QER, copied)).calls, []);
  // LQER without calibration is not LQER with it (no output error).
  assert.equal((await run(LQER, null)).calls.length, NAMES.length);

  // Weights: the checkpoint rewritten in place with two layers changed, its mtime put back.
  const before = statSync(path);
  const changed = [NAMES[1]!, NAMES[5]!];
  writeLlamaCheckpoint(dir, { perturb: changed });
  utimesSync(path, before.atime, before.mtime);
  const after = await run(L2QER, statsPath);
  assert.deepEqual(after.calls, changed);
  for (const [i, n] of NAMES.entries()) {
    if (changed.includes(n)) assert.notDeepEqual(after.out[i]!.sigmaPlain, base.out[i]!.sigmaPlain);
    else assert.deepEqual(strip(after.out[i]!), strip(base.out[i]!));
  }
});

test('an interrupted run resumes where it stopped', async () => {
  const { path, statsPath, storeDir } = await setup();
  const store = await ResultStore.open(storeDir);
  const stats = await StatsFile.open(statsPath);
  const results = new LayerResults({ store, checkpoint: await openCheckpoint(path), stats });
  const first = counting(5);
  await assert.rejects(async () => {
    for (const n of NAMES) await results.analyze(n, L2QER, { compute: first.compute, signal: first.signal });
  });
  assert.equal(first.calls.length, 5);
  const second = counting();
  for (const n of NAMES) await results.analyze(n, L2QER, { compute: second.compute });
  assert.deepEqual(second.calls, NAMES.slice(5));
  await stats.close();
});

test('a corrupted entry is ignored with a warning, recomputed and rewritten', async () => {
  const { path, statsPath, storeDir } = await setup();
  const stats = await StatsFile.open(statsPath);
  const results = new LayerResults({
    store: await ResultStore.open(storeDir),
    checkpoint: await openCheckpoint(path),
    stats,
  });
  const good = await results.analyze(NAMES[3]!, L2QER);
  const entry = good.stored!.entry;
  const bytes = readFileSync(entry);
  bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
  writeFileSync(entry, bytes);
  const warnings: string[] = [];
  const c = counting();
  const again = await results.analyze(NAMES[3]!, L2QER, { compute: c.compute, warn: (m) => warnings.push(m) });
  assert.deepEqual(c.calls, [NAMES[3]]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /ignoring corrupted store entry .*\.qlr \(checksum mismatch\); recomputing/);
  assert.deepEqual(again.stored!.warnings, warnings);
  assert.deepEqual({ ...strip(again), timings: {} }, { ...strip(good), timings: {} });
  // Rewritten: the next look-up is a clean hit.
  const third = await results.analyze(NAMES[3]!, L2QER, { compute: c.compute, warn: (m) => warnings.push(m) });
  assert.equal(third.stored!.source, 'store');
  assert.equal(warnings.length, 1);
  // A truncated entry (a writer that died before the rename cannot make one, a full disk can).
  writeFileSync(entry, readFileSync(entry).subarray(0, 100));
  await results.analyze(NAMES[3]!, L2QER, { compute: c.compute, warn: (m) => warnings.push(m) });
  assert.match(warnings[1]!, /ignoring corrupted store entry/);
  await stats.close();
});

test('a store computed elsewhere is found by content: a copied checkpoint after hashing its weights, never by path', async () => {
  const { dir, path, statsPath, storeDir } = await setup();
  const stats = await StatsFile.open(statsPath);
  const computed = new LayerResults({
    store: await ResultStore.open(storeDir),
    checkpoint: await openCheckpoint(path),
    stats,
  });
  for (const n of NAMES) await computed.analyze(n, L2QER);
  const elsewhere = mkdtempSync(join(tmpdir(), 'ql-store-copy-'));
  cpSync(dir, elsewhere, { recursive: true });
  const copy = join(elsewhere, 'model.safetensors');
  const copyStats = await StatsFile.open(join(elsewhere, 'stats.safetensors'));
  const { ckpt, reads } = countReads(await openCheckpoint(copy));
  const looked = new LayerResults({
    store: await ResultStore.open(join(elsewhere, 'store')),
    checkpoint: ckpt,
    stats: copyStats,
  });
  // Without hashing, the copy's files are unknown to the store: nothing is claimed.
  assert.equal(await looked.lookup(NAMES[0]!, L2QER), null);
  assert.deepEqual(reads, []);
  const found = await looked.lookup(NAMES[0]!, L2QER, { hashUnknown: true });
  assert.equal(found?.stored?.source, 'store');
  assert.deepEqual(reads, [NAMES[0]]);
  // Now known by identity on this machine: no second read.
  assert.ok(await looked.lookup(NAMES[0]!, L2QER));
  assert.deepEqual(reads, [NAMES[0]]);
  await stats.close();
  await copyStats.close();
});

test('an analysis that consumes the weight forms E while it is read, yet stores the hash of W and the same result', async () => {
  const { dir, path, storeDir } = await setup();
  const base = await openCheckpoint(path);
  // Passes the row reports through, and records them.
  const reported: number[] = [];
  const ckpt = Object.create(base) as Checkpoint;
  ckpt.readWeight = (name, signal, opts) =>
    base.readWeight(name, signal, {
      onRows: (data, rows) => {
        reported.push(rows);
        opts?.onRows?.(data, rows);
      },
    });
  const results = new LayerResults({ store: await ResultStore.open(storeDir), checkpoint: ckpt, stats: null });
  const name = NAMES.find((n) => n.includes('up_proj'))!;
  const streamed = await results.analyze(name, LQER, { consumeWeight: true });
  assert.equal(streamed.stored?.source, 'computed');
  assert.ok(reported.length > 0, 'the reader reported rows');
  const w = await base.readWeight(name);
  const direct = await analyzeLayer({ name, data: w.data, out: w.out, in: w.in }, LQER);
  assert.deepEqual({ ...strip(streamed), timings: {} }, { ...direct, timings: {} });
  // A copy elsewhere, hashed from its own untouched weights, finds the result: the hash taken
  // during the streamed read was that of W, not of E.
  const elsewhere = mkdtempSync(join(tmpdir(), 'ql-store-stream-'));
  cpSync(dir, elsewhere, { recursive: true });
  const looked = new LayerResults({
    store: await ResultStore.open(join(elsewhere, 'store')),
    checkpoint: await openCheckpoint(join(elsewhere, 'model.safetensors')),
    stats: null,
  });
  assert.equal((await looked.lookup(name, LQER, { hashUnknown: true }))?.stored?.source, 'store');
});

test('opening a store: created with its marker; a file, a foreign folder or a newer store are refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-store-open-'));
  const s = await ResultStore.open(join(dir, 'new'));
  assert.deepEqual(readdirSync(s.dir), [STORE_MARKER]);
  assert.equal(JSON.parse(readFileSync(join(s.dir, STORE_MARKER), 'utf8')).version, 1);
  await ResultStore.open(join(dir, 'new')); // again: fine
  writeFileSync(join(dir, 'file'), 'x');
  await assert.rejects(ResultStore.open(join(dir, 'file')), /the store must be a folder/);
  const foreign = join(dir, 'foreign');
  cpSync(join(dir, 'file'), join(foreign, 'notes.txt'));
  await assert.rejects(
    ResultStore.open(foreign),
    /not empty and is not a Quant Lens result store \(it holds notes\.txt\)/,
  );
  const newer = join(dir, 'newer');
  cpSync(join(s.dir, STORE_MARKER), join(newer, STORE_MARKER));
  writeFileSync(join(newer, STORE_MARKER), JSON.stringify({ format: 'quant-lens-store', version: 99 }));
  await assert.rejects(ResultStore.open(newer), /store version 99 was written by a newer Quant Lens/);
  await assert.rejects(ResultStore.open(join(dir, 'missing'), { create: false }), /no result store here/);
});

test('several settings of one layer (allocate’s candidate formats) read the weight once, and only what is missing is computed', async () => {
  const { path, storeDir } = await setup();
  const store = await ResultStore.open(storeDir);
  const { ckpt, reads } = countReads(await openCheckpoint(path));
  const results = new LayerResults({ store, checkpoint: ckpt, stats: null });
  const variants = ['mxint3', 'mxint4', 'int4'].map((weightFormat) => ({ ...LQER, weightFormat, spectra: false }));
  await results.analyze(NAMES[0]!, variants[1]!);
  assert.equal(reads.length, 1);
  const c = counting();
  const got = await results.analyzeVariants(NAMES[0]!, variants, { compute: c.compute, consumeWeight: true });
  assert.equal(reads.length, 2, 'one more read for the two missing formats');
  assert.deepEqual(c.calls, [NAMES[0], NAMES[0]]);
  assert.deepEqual(
    got.map((a) => [a.weightFormat, a.stored?.source]),
    [
      ['mxint3', 'computed'],
      ['mxint4', 'store'],
      ['int4:g128', 'computed'],
    ],
  );
  const again = await results.analyzeVariants(NAMES[0]!, variants, { compute: c.compute });
  assert.equal(reads.length, 2);
  assert.equal(c.calls.length, 2);
  assert.ok(again.every((a) => a.stored?.source === 'store'));
  // Computing two formats from one read gave what each gives alone (the first did not consume W).
  const w = await ckpt.readWeight(NAMES[0]!);
  for (const [i, v] of variants.entries()) {
    const direct = await analyzeLayer({ name: NAMES[0]!, data: Float32Array.from(w.data), out: w.out, in: w.in }, v);
    assert.deepEqual({ ...strip(got[i]!), timings: {} }, { ...direct, timings: {} }, v.weightFormat);
  }
});
