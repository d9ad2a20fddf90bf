/**
 * What the worker does for each method. Kept apart from the message plumbing so the CLI and the
 * tests can call the same functions in-process.
 */
import { basename } from 'node:path';
import type { Checkpoint } from '../engine/readers/checkpoint';
import { elementCount } from '../engine/readers/checkpoint';
import { openCheckpoint } from '../engine/readers/open';
import { QuantLensError, throwIfCancelled } from '../engine/errors';
import { StatsFile } from '../engine/calibration/statsFile';
import { analyzeLayer, startErrorPass, type AnalyzeOptions } from '../engine/methods/analyzeLayer';
import { warmUpTriplets } from '../engine/linalg';
import { runExport, targetSupport } from '../engine/export/targets';
import { planExport } from '../engine/export/plan';
import type { CheckpointSummary } from '../shared/checkpointSummary';
import type { WorkerMethods } from '../shared/workerProtocol';
import { calibrateToFile } from '../engine/calibration/calibrateOnnx';
import { analysisHandlers } from './analysisHandlers';
import type { HandlerContext, HandlerTable } from './handlerTypes';
import { ResultStore } from '../engine/store/resultStore';
import { LayerResults } from '../engine/store/storedAnalysis';
import { EigenHelper } from './eigenHelperClient';
import { withWeightBuffer } from '../engine/readers/weightBuffers';
import { ThreadTurns, type HeldTurn } from './threadTurns';

export type Handlers = HandlerTable<keyof WorkerMethods>;
type AnalyzeMethod = WorkerMethods['analyzeLayer'];

export function summarize(ckpt: Checkpoint): CheckpointSummary {
  let parameterCount = 0;
  for (const t of ckpt.tensors) parameterCount += elementCount(t.shape);
  return {
    format: ckpt.format,
    path: ckpt.path,
    files: ckpt.files,
    metadata: ckpt.metadata,
    architecture: ckpt.architecture,
    family: ckpt.family ?? null,
    warnings: ckpt.warnings ?? [],
    tensors: ckpt.tensors.map((t) => ({
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      file: t.file,
      byteLength: t.byteLength,
      decodable: t.decodable,
      ...(t.storedDims ? { storedDims: t.storedDims } : {}),
      ...(t.offset !== undefined ? { offset: t.offset } : {}),
    })),
    linearLayers: ckpt.linearLayers,
    parameterCount,
  };
}

/** Open checkpoints, kept while the worker lives so later layer reads skip header parsing. */
export class CheckpointCache {
  private open = new Map<string, Promise<Checkpoint>>();
  constructor(private readonly capacity = 4) {}

  get(path: string): Promise<Checkpoint> {
    let c = this.open.get(path);
    if (c) {
      this.open.delete(path);
      this.open.set(path, c); // most recently used last
      return c;
    }
    c = openCheckpoint(path);
    this.open.set(path, c);
    c.catch(() => this.open.delete(path));
    while (this.open.size > this.capacity) {
      const [oldest, p] = this.open.entries().next().value as [string, Promise<Checkpoint>];
      this.open.delete(oldest);
      void p.then((ck) => ck.close()).catch(() => undefined);
    }
    return c;
  }

  /** Closes every checkpoint (the CLI's in-process engine, when its command ends). */
  async closeAll(): Promise<void> {
    const open = [...this.open.values()];
    this.open.clear();
    for (const p of open) await p.then((ck) => ck.close()).catch(() => undefined);
  }
}

/** Open calibration statistics files, by path. */
export class StatsCache {
  private open = new Map<string, Promise<StatsFile>>();

  get(path: string): Promise<StatsFile> {
    let s = this.open.get(path);
    if (!s) {
      s = StatsFile.open(path);
      this.open.set(path, s);
      s.catch(() => this.open.delete(path));
    }
    return s;
  }

  async closeAll(): Promise<void> {
    const open = [...this.open.values()];
    this.open.clear();
    for (const p of open) await p.then((s) => s.close()).catch(() => undefined);
  }
}

/** Result stores by folder; opening one checks (and creates) its marker once per worker. */
export class StoreCache {
  private open = new Map<string, Promise<ResultStore>>();

  get(dir: string): Promise<ResultStore> {
    let s = this.open.get(dir);
    if (!s) {
      s = ResultStore.open(dir);
      this.open.set(dir, s);
      s.catch(() => this.open.delete(dir));
    }
    return s;
  }
}

function layerRegex(pattern: string): RegExp {
  try {
    return new RegExp(pattern);
  } catch (e) {
    throw new QuantLensError('bad-argument', `layer pattern: ${(e as Error).message}`);
  }
}

/** The helper thread for E's spectrum, started on the first layer analysis that can use it. */
let eigenHelper: EigenHelper | undefined;
let warmedUp: Promise<void> | undefined;
function warmUp(): Promise<void> {
  warmedUp ??= warmUpTriplets().catch(() => undefined);
  return warmedUp;
}

function offloadOption(): Pick<AnalyzeOptions, 'offload' | 'offloadBand'> {
  if (!EigenHelper.worthwhile()) return {};
  eigenHelper ??= new EigenHelper();
  return { offload: eigenHelper.eigenvalues, offloadBand: eigenHelper.bandEigenvalues };
}

/** Analyses called beside each other take turns on this thread (threadTurns.ts). */
const turns = new ThreadTurns();

export function createHandlers(
  cache = new CheckpointCache(),
  statsCache = new StatsCache(),
  stores = new StoreCache(),
): Handlers {
  /** One layer's analysis, run while `turn` holds this thread. */
  const analyzeOneLayer = async (
    { checkpoint, layer, settings, calibration, store, progressive, firstRank }: AnalyzeMethod['params'],
    ctx: HandlerContext<AnalyzeMethod['progress']>,
    turn: HeldTurn,
  ): Promise<AnalyzeMethod['result']> => {
    const ckpt = await cache.get(checkpoint);
    const shared = { turn, workspace: turn.workspace, ...offloadOption() };
    let fraction = 0;
    const staged: Pick<AnalyzeOptions, 'onPartial' | 'firstRank'> = progressive
      ? {
          onPartial: (partial) => ctx.progress({ fraction, step: 'partial result', partial }),
          ...(firstRank !== undefined ? { firstRank } : {}),
        }
      : {};
    const onProgress = (f: number, step: string) => {
      fraction = f;
      ctx.progress({ fraction: f, step });
    };
    const info = ckpt.linearLayers.find((l) => l.name === layer);
    if (!info)
      throw new QuantLensError('bad-argument', `"${layer}" is not a linear layer of this checkpoint`, checkpoint);
    const [out, nIn] = info.shape;
    // The weight is read for this call alone, into the storage of the layer before (weightBuffers.ts).
    if (store) {
      const results = new LayerResults({
        store: await stores.get(store),
        checkpoint: ckpt,
        stats: calibration ? await statsCache.get(calibration) : null,
      });
      return withWeightBuffer((weightBuffer) =>
        results.analyze(layer, settings, {
          signal: ctx.signal,
          onProgress,
          ...staged,
          ...shared,
          consumeWeight: true,
          whileReading: warmUp,
          weightBuffer,
        }),
      );
    }
    const calib = calibration ? await (await statsCache.get(calibration)).layerCalibration(layer, nIn) : undefined;
    ctx.progress({ fraction: 0, step: 'read weight' });
    // The weight is read for this call alone, so E may take its place, and its bands become E as
    // their rows land, beside the read of the rest (0.2–0.3 s of a 14336×4096 layer's read).
    // onnxruntime's first session starts meanwhile too (a failed warm-up is left to the analysis
    // to report).
    const pass = startErrorPass({ name: layer, out, in: nIn, ...(calib ? { calibration: calib } : {}) }, settings);
    const onRows = pass ? (data: Float32Array, rows: number) => pass.advance(data, rows, ctx.signal) : undefined;
    return withWeightBuffer(async (lease) => {
      const [w] = await Promise.all([
        // analyzeLayer counts non-finite weights in its error pass.
        ckpt.readWeight(layer, ctx.signal, {
          ...(onRows ? { onRows } : {}),
          into: lease(out * nIn),
          countNonFinite: false,
        }),
        warmUp(),
      ]);
      throwIfCancelled(ctx.signal);
      return analyzeLayer(
        {
          name: layer,
          data: w.data,
          out: w.out,
          in: w.in,
          file: info.file,
          ...(calib ? { calibration: calib } : {}),
        },
        settings,
        {
          signal: ctx.signal,
          onProgress,
          ...staged,
          ...shared,
          consumeWeight: true,
          ...(pass ? { errorPass: pass } : {}),
        },
      );
    });
  };
  return {
    async openCheckpoint({ path }) {
      return summarize(await cache.get(path));
    },
    async analyzeLayer(params, ctx) {
      const turn = await turns.take(ctx.signal);
      try {
        return await analyzeOneLayer(params, ctx, turn);
      } finally {
        turn.end();
      }
    },
    async storedAnalyses(p, ctx) {
      const ckpt = await cache.get(p.checkpoint);
      const results = new LayerResults({
        store: await stores.get(p.store),
        checkpoint: ckpt,
        stats: p.calibration ? await statsCache.get(p.calibration) : null,
      });
      const names = p.layers ?? ckpt.linearLayers.map((l) => l.name);
      const found = [];
      const missing = [];
      const warnings: string[] = [];
      for (const [i, name] of names.entries()) {
        throwIfCancelled(ctx.signal);
        const a = await results.lookup(name, p.settings, {
          hashUnknown: !!p.hashUnknown,
          signal: ctx.signal,
          warn: (m) => warnings.push(m),
        });
        if (a) found.push(a);
        else missing.push(name);
        ctx.progress({ done: i + 1, total: names.length, layer: name });
      }
      return { found, missing, warnings };
    },
    async exportTargets(p) {
      const ckpt = await cache.get(p.checkpoint);
      const wanted = p.layers && p.layers.length ? new Set(p.layers) : null;
      const layers = ckpt.linearLayers.filter((l) => (wanted ? wanted.has(l.name) : l.quantizedByDefault));
      const plan = planExport({
        checkpoint: ckpt,
        layers,
        settings: p.settings,
        rank: p.rank,
        recipe: p.recipe ?? null,
      });
      const stem = basename(ckpt.path).replace(/(\.safetensors\.index\.json|\.[^.]+)$/, '');
      return targetSupport(plan).map(({ id, target, refusals }) => ({
        id,
        label: target.label,
        description: target.description,
        output: target.output,
        ...(target.extension ? { extension: target.extension } : {}),
        defaultName: target.defaultName(stem),
        carriesCorrection: target.carriesCorrection,
        refusals,
      }));
    },
    async exportCheckpoint(p, ctx) {
      const ckpt = await cache.get(p.checkpoint);
      const wanted = p.layers && p.layers.length ? new Set(p.layers) : null;
      const layers = ckpt.linearLayers.filter((l) => (wanted ? wanted.has(l.name) : l.quantizedByDefault));
      return runExport(
        p.target ?? 'quant-lens',
        {
          checkpoint: ckpt,
          layers,
          settings: p.settings,
          rank: p.rank,
          recipe: p.recipe ?? null,
          stats: p.calibration ? await statsCache.get(p.calibration) : null,
        },
        {
          out: p.out,
          force: !!p.force,
          dtype: p.dtype,
          ...(p.shardBytes ? { shardBytes: p.shardBytes } : {}),
          inputs: p.calibration ? [{ path: p.calibration, what: 'the calibration file' }] : [],
          outOption: 'the export',
          signal: ctx.signal,
          onLayer: (done, total, layer) => ctx.progress({ done, total, layer }),
        },
      );
    },
    async calibrationInfo({ path }) {
      const s = await statsCache.get(path);
      const layers: Record<string, string[]> = {};
      for (const [name, kinds] of s.info.layers) layers[name] = [...kinds];
      return { path, layers, metadata: s.info.metadata };
    },
    async calibrate(p, ctx) {
      const r = await calibrateToFile({
        model: p.model,
        data: p.data,
        out: p.out,
        force: !!p.force,
        outOption: 'the statistics file',
        ...(p.tokenizer ? { tokenizer: p.tokenizer } : {}),
        seqLen: p.seqLen,
        batchSize: p.batchSize,
        maxSamples: p.maxSamples,
        gram: !!p.gram,
        ...(p.sampleRows ? { sampleRows: p.sampleRows } : {}),
        layers: { all: true, ...(p.layerPattern ? { pattern: layerRegex(p.layerPattern) } : {}) },
        signal: ctx.signal,
        onProgress: (progress) => ctx.progress(progress),
      });
      return { out: p.out, layers: r.stats.size, samples: r.samples, batches: r.batches, seconds: r.seconds };
    },
    ...analysisHandlers(cache, statsCache),
  };
}
