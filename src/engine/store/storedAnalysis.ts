/**
 * Layer analyses through the result store: answered from it when the same weight, calibration and
 * settings were analysed before (by this process, another one, or another machine), computed and
 * written into it otherwise.
 */
import { QuantLensError, throwIfCancelled } from '../errors';
import { analyzeLayer, startErrorPass, type AnalyzeOptions, type LayerInput } from '../methods/analyzeLayer';
import type { BandedErrorPass } from '../methods/errorBands';
import type { AnalysisSettings, LayerAnalysis, LayerCalibration } from '../methods/layerAnalysis';
import { formatToString, parseFormat } from '../quantizers';
import type { Checkpoint, LinearLayer } from '../readers/checkpoint';
import type { StatsFile } from '../calibration/statsFile';
import {
  calibrationContentHash,
  fileIdentity,
  identityKey,
  resultKey,
  unchangedSince,
  weightContentHasher,
  type FileIdentity,
  type ResultKeyInput,
} from './keys';
import type { ResultStore } from './resultStore';

/** Where an analysis handed out by the store came from. Never part of what is stored. */
export interface StoreProvenance {
  source: 'store' | 'computed';
  /** When the stored analysis was computed (ISO time); now for 'computed'. */
  computedAt: string;
  /** How long its computation took. */
  computeMs: number;
  /** The entry's file in the store. */
  entry: string;
  /** What went wrong with the store on the way (a corrupted entry that was recomputed, …). */
  warnings: string[];
}

export type StoredLayerAnalysis = LayerAnalysis & { stored?: StoreProvenance };

export interface StoreSource {
  store: ResultStore;
  checkpoint: Checkpoint;
  stats: StatsFile | null;
}

export interface StoredAnalyzeOptions extends AnalyzeOptions {
  /** Problems worth telling the user that do not stop the analysis (a corrupted entry). */
  warn?: (message: string) => void;
  /** The computation, when not analyzeLayer itself (tests count calls through it). */
  compute?: (input: LayerInput, settings: AnalysisSettings, opts: AnalyzeOptions) => Promise<LayerAnalysis>;
  /** Work to overlap with reading the weight when a result must be computed (starting onnxruntime). */
  whileReading?: () => Promise<void>;
  /**
   * Leases storage of at least `length` values for the weight when it must be read
   * (ReadWeightOptions.into); called at most once, the storage free again once the call returns.
   */
  weightBuffer?: (length: number) => Float32Array;
}

interface RecordShape {
  content: string;
}

/** Settings as they determine the result: formats spelled one way, spectra on unless turned off. */
export function normalizedSettings(s: AnalysisSettings): AnalysisSettings {
  return {
    ...s,
    weightFormat: formatToString(parseFormat(s.weightFormat)),
    factorFormat: formatToString(parseFormat(s.factorFormat)),
    spectra: s.spectra !== false,
  };
}

function findLayer(ckpt: Checkpoint, name: string): LinearLayer {
  const l = ckpt.linearLayers.find((x) => x.name === name);
  if (!l) throw new QuantLensError('bad-argument', `"${name}" is not a linear layer of this checkpoint`, ckpt.path);
  return l;
}

/** The layer's description: everything besides the bytes that decides the float32 weight. */
function weightDescription(ckpt: Checkpoint, layer: LinearLayer): unknown {
  const tensor = ckpt.tensors.find((t) => t.name === (layer.tensor ?? layer.name)) ?? null;
  return { format: ckpt.format, layer, tensor };
}

export class LayerResults {
  constructor(readonly source: StoreSource) {}

  /**
   * Taken at every analysis and look-up, since files may change while a long job runs (a stat per
   * file; the guard bytes are read again only when the stat changed). Every file of the checkpoint
   * counts: a layer's value can depend on an index or a model.json beside the file holding its
   * bytes, and a tensor can span shard files (TF.js).
   */
  private async identities(): Promise<{ weights: FileIdentity[]; stats: FileIdentity[] }> {
    const weights = await Promise.all(this.source.checkpoint.files.map((f) => fileIdentity(f.path)));
    const stats = this.source.stats ? [await fileIdentity(this.source.stats.info.path)] : [];
    return { weights, stats };
  }

  private keysFor(layer: LinearLayer, ids: { weights: FileIdentity[]; stats: FileIdentity[] }) {
    const weightId = identityKey('weight', ids.weights, weightDescription(this.source.checkpoint, layer));
    const calibId = this.source.stats
      ? identityKey('calibration', ids.stats, { layer: layer.name, inFeatures: layer.shape[1] })
      : null;
    return { weightId, calibId };
  }

  private resultKeyFor(layer: LinearLayer, weight: string, calibration: string | null, settings: AnalysisSettings) {
    return resultKey({
      layer: layer.name,
      shape: layer.shape,
      weight,
      calibration,
      settings: normalizedSettings(settings),
    });
  }

  /**
   * The stored analysis of a layer at these settings, or null. Reads no weight when this machine
   * has seen the checkpoint's files before; with `hashUnknown` it otherwise reads and hashes the
   * weight (a store computed elsewhere), still computing nothing.
   */
  async lookup(
    name: string,
    settings: AnalysisSettings,
    opts: { hashUnknown?: boolean; signal?: AbortSignal; warn?: (m: string) => void } = {},
  ): Promise<StoredLayerAnalysis | null> {
    return (await this.find(name, settings, opts)).hit;
  }

  /** The look-up, and the result key it tried (null when the identity records were missing). */
  private async find(
    name: string,
    settings: AnalysisSettings,
    opts: { hashUnknown?: boolean; signal?: AbortSignal; warn?: (m: string) => void },
  ): Promise<{ hit: StoredLayerAnalysis | null; tried: string | null }> {
    const layer = findLayer(this.source.checkpoint, name);
    const ids = await this.identities();
    const { weightId, calibId } = this.keysFor(layer, ids);
    const { store } = this.source;
    let weight = (await store.getRecord<RecordShape>(weightId, opts.warn))?.content;
    let calibration = calibId ? (await store.getRecord<RecordShape>(calibId, opts.warn))?.content : null;
    if (weight === undefined || calibration === undefined) {
      if (!opts.hashUnknown) return { hit: null, tried: null };
      const read = await this.readAndHash(layer, ids, { weightId, calibId }, opts.signal, opts.warn);
      weight = read.weight;
      calibration = read.calibration;
    }
    const key = this.resultKeyFor(layer, weight, calibration, settings).key;
    return { hit: await this.fromStore(key, opts.warn), tried: key };
  }

  private async fromStore(key: string, warn?: (m: string) => void): Promise<StoredLayerAnalysis | null> {
    const e = await this.source.store.get<LayerAnalysis>(key, warn);
    if (!e) return null;
    return {
      ...e.value,
      stored: {
        source: 'store',
        computedAt: e.meta.createdAt,
        computeMs: e.meta.computeMs,
        entry: e.path,
        warnings: [],
      },
    };
  }

  private async readAndHash(
    layer: LinearLayer,
    ids: { weights: FileIdentity[]; stats: FileIdentity[] },
    keys: { weightId: string; calibId: string | null },
    signal?: AbortSignal,
    warn?: (m: string) => void,
    streamFor?: AnalysisSettings,
    into?: (length: number) => Float32Array,
  ): Promise<{ input: LayerInput; weight: string; calibration: string | null; pass: BandedErrorPass | null }> {
    const [out, nIn] = layer.shape;
    const calib: LayerCalibration | undefined = this.source.stats
      ? await this.source.stats.layerCalibration(layer.name, nIn)
      : undefined;
    // With one analysis to compute, its bands become E as their rows land (after they are hashed).
    const pass = streamFor
      ? startErrorPass({ name: layer.name, out, in: nIn, ...(calib ? { calibration: calib } : {}) }, streamFor)
      : null;
    const hasher = weightContentHasher(out, nIn);
    const onRows = pass
      ? (data: Float32Array, rows: number) => {
          hasher.rows(data, rows);
          pass.advance(data, rows, signal);
        }
      : undefined;
    // The analysis counts non-finite weights itself.
    const w = await this.source.checkpoint.readWeight(layer.name, signal, {
      countNonFinite: false,
      ...(onRows ? { onRows } : {}),
      ...(into ? { into: into(out * nIn) } : {}),
    });
    throwIfCancelled(signal);
    hasher.rows(w.data, w.out);
    const weight = hasher.digest();
    const calibration = calib ? calibrationContentHash(calib) : null;
    // Recorded only when no file changed while it was read: the identity taken before would
    // otherwise vouch for bytes it never saw.
    if (await unchangedSince([...ids.weights, ...ids.stats])) {
      await this.source.store.putRecord(keys.weightId, { content: weight }, warn);
      if (keys.calibId && calibration) await this.source.store.putRecord(keys.calibId, { content: calibration }, warn);
    }
    const input: LayerInput = {
      name: layer.name,
      data: w.data,
      out: w.out,
      in: w.in,
      file: layer.file,
      ...(calib ? { calibration: calib } : {}),
    };
    return { input, weight, calibration, pass };
  }

  /** The analysis of a layer: from the store when it holds it, else computed and stored. */
  async analyze(
    name: string,
    settings: AnalysisSettings,
    opts: StoredAnalyzeOptions = {},
  ): Promise<StoredLayerAnalysis> {
    return (await this.analyzeVariants(name, [settings], opts))[0]!;
  }

  /**
   * One layer at several settings (allocate's candidate formats): what the store lacks is computed
   * from one read of the weight.
   */
  async analyzeVariants(
    name: string,
    variants: AnalysisSettings[],
    opts: StoredAnalyzeOptions = {},
  ): Promise<StoredLayerAnalysis[]> {
    const out: (StoredLayerAnalysis | null)[] = [];
    const tried: (string | null)[] = [];
    const warnings: string[][] = [];
    const warnFor = (i: number) => (m: string) => {
      warnings[i]!.push(m);
      opts.warn?.(m);
    };
    for (const [i, settings] of variants.entries()) {
      warnings.push([]);
      const found = await this.find(name, settings, { warn: warnFor(i) });
      out.push(found.hit);
      tried.push(found.tried);
    }
    let read: Awaited<ReturnType<LayerResults['readAndHash']>> | null = null;
    for (const [i, settings] of variants.entries()) {
      if (out[i]) continue;
      const warn = warnFor(i);
      const layer = findLayer(this.source.checkpoint, name);
      if (!read) {
        const ids = await this.identities();
        const toCompute = variants.filter((_, j) => !out[j]);
        const stream = opts.consumeWeight && toCompute.length === 1 ? toCompute[0] : undefined;
        [read] = await Promise.all([
          this.readAndHash(layer, ids, this.keysFor(layer, ids), opts.signal, warn, stream, opts.weightBuffer),
          opts.whileReading?.(),
        ]);
      }
      const { key, input } = this.resultKeyFor(layer, read.weight, read.calibration, settings);
      // The same values under another path or file identity (a copy, a store computed elsewhere).
      const byContent = key === tried[i] ? null : await this.fromStore(key, warn);
      if (byContent) {
        out[i] = byContent;
        continue;
      }
      const compute = opts.compute ?? analyzeLayer;
      const { warn: _w, compute: _c, whileReading: _r, weightBuffer: _b, consumeWeight, ...analyzeOptions } = opts;
      // The weight read here serves every variant still to compute: only the last may consume it.
      const last = !variants.some((_, j) => j > i && !out[j]);
      const t0 = performance.now();
      const analysis = await compute(read.input, settings, {
        ...analyzeOptions,
        ...(consumeWeight && last ? { consumeWeight: true } : {}),
        ...(read.pass ? { errorPass: read.pass } : {}),
      });
      const computeMs = performance.now() - t0;
      await this.source.store.put(key, analysis, { keyInput: input satisfies ResultKeyInput, computeMs }, warn);
      out[i] = {
        ...analysis,
        stored: {
          source: 'computed',
          computedAt: new Date().toISOString(),
          computeMs,
          entry: this.source.store.entryPath('results', key),
          warnings: [],
        },
      };
    }
    return out.map((a, i) => ({
      ...a!,
      stored: { ...a!.stored!, warnings: [...a!.stored!.warnings, ...warnings[i]!] },
    }));
  }
}
