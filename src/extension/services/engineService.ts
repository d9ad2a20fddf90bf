/**
 * Owns the worker pool that runs the engine for the extension, and the session-wide cache of layer
 * analyses: one result per (checkpoint, layer, settings, calibration), shared by the layer panels,
 * the overview, the tree and the exports, so nothing is computed twice in a session.
 */
import * as vscode from 'vscode';
import { WorkerPool } from '../../worker/pool';
import type { AnalysisProgress, AnalysisSettings, LayerAnalysis } from '../../shared/workerProtocol';
import { analysisKey } from '../../shared/quantSettings';
import { SharedJobCache } from './sharedJobCache';
import { workerCount } from '../configuration';
import { isCancellation } from '../errors';
import { errorMessage } from '../../engine/errors';
import { ResultStore } from '../../engine/store/resultStore';
import { canonicalJson } from '../../engine/store/keys';

export interface AnalysisRequest {
  checkpoint: string;
  layer: string;
  settings: AnalysisSettings;
  calibration: string | null;
}

export interface AnalysisOutcome {
  analysis: LayerAnalysis;
  /** Answered from the cache, without running anything. */
  cached: boolean;
  timeMs: number;
}

export interface StoredAnalysis {
  checkpoint: string;
  layer: string;
  key: string;
  analysis: LayerAnalysis;
}

/** Enough for every linear layer of a 7B model at a few settings; a result is small (spectra + curves). */
const CACHE_CAPACITY = 2048;

export class EngineService implements vscode.Disposable {
  private currentPool: WorkerPool;
  private poolSize: number;
  private readonly stored = new vscode.EventEmitter<StoredAnalysis>();
  /** Fires whenever a new analysis lands in the cache, whoever asked for it. */
  readonly onDidStoreAnalysis = this.stored.event;
  private readonly analyses: SharedJobCache<LayerAnalysis, AnalysisProgress>;
  private readonly requests = new Map<string, AnalysisRequest>();
  private readonly disposables: vscode.Disposable[] = [];
  private storeDir: string | null = null;
  /** A store this machine did not fill: layers are looked for by their weights' hashes too. */
  private storeForeign = false;
  private storeReady: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly extensionUri: vscode.Uri,
    readonly log: vscode.LogOutputChannel,
  ) {
    this.poolSize = workerCount();
    this.currentPool = this.createPool(this.poolSize);
    this.analyses = new SharedJobCache<LayerAnalysis, AnalysisProgress>(CACHE_CAPACITY, (key, analysis) => {
      const r = this.requests.get(key);
      this.requests.delete(key);
      if (r) this.stored.fire({ checkpoint: r.checkpoint, layer: r.layer, key, analysis });
    });
    this.disposables.push(
      this.stored,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('quantLens.workers')) this.resizePool();
      }),
    );
  }

  get pool(): WorkerPool {
    return this.currentPool;
  }

  private createPool(size: number): WorkerPool {
    return new WorkerPool({ script: vscode.Uri.joinPath(this.extensionUri, 'dist', 'worker.js').fsPath, size });
  }

  private resizePool(): void {
    const size = workerCount();
    if (size === this.poolSize) return;
    if (this.currentPool.pending > 0) {
      this.log.info(`worker count ${size} applies once the running analyses finish (reload the window to force it)`);
      const wait = setInterval(() => {
        if (this.currentPool.pending === 0) {
          clearInterval(wait);
          this.resizePool();
        }
      }, 1000);
      this.disposables.push({ dispose: () => clearInterval(wait) });
      return;
    }
    const old = this.currentPool;
    this.currentPool = this.createPool(size);
    this.poolSize = size;
    void old.dispose();
    this.log.info(`worker pool resized to ${size}`);
  }

  /** The result store analyses go through (docs/result-store.md), or null. */
  get store(): string | null {
    return this.storeDir;
  }

  /**
   * Uses a result-store folder from now on (null: none). A folder that cannot be a store (a file,
   * a folder of other things, a newer store) is not used: the reason is logged and returned.
   */
  useStore(dir: string | null, foreign = false): Promise<string | null> {
    const ready = (async () => {
      this.storeForeign = foreign;
      if (dir === null) {
        this.storeDir = null;
        this.log.info('result store: off');
        return null;
      }
      try {
        await ResultStore.open(dir);
        this.storeDir = dir;
        this.log.info(`result store: ${dir}`);
        return null;
      } catch (e) {
        this.storeDir = null;
        const why = errorMessage(e);
        this.log.warn(`result store not used: ${why}`);
        return why;
      }
    })();
    this.storeReady = ready;
    return ready;
  }

  /**
   * Puts what the result store holds for these requests into the session cache (and tells the
   * listeners), computing nothing. `hashUnknown` reads and hashes weights whose files this machine
   * has not seen with the store (a store computed elsewhere).
   */
  async loadStored(
    requests: AnalysisRequest[],
    opts: { hashUnknown?: boolean; signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
  ): Promise<{ found: number; asked: number }> {
    await this.storeReady;
    const store = this.storeDir;
    const wanted = requests.filter(
      (r) => !this.analyses.peek(this.keyOf(r)) && !this.analyses.isRunning(this.keyOf(r)),
    );
    if (!store || wanted.length === 0) return { found: 0, asked: 0 };
    // One worker call per checkpoint, calibration and settings (layers of other shapes differ in rank).
    const groups = new Map<string, AnalysisRequest[]>();
    for (const r of wanted) {
      const g = `${r.checkpoint}\0${r.calibration ?? ''}\0${canonicalJson(r.settings)}`;
      groups.set(g, [...(groups.get(g) ?? []), r]);
    }
    let found = 0;
    let done = 0;
    for (const group of groups.values()) {
      const first = group[0]!;
      const before = done;
      const result = await this.pool.call(
        'storedAnalyses',
        {
          checkpoint: first.checkpoint,
          settings: first.settings,
          store,
          layers: group.map((r) => r.layer),
          ...(first.calibration ? { calibration: first.calibration } : {}),
          ...((opts.hashUnknown ?? this.storeForeign) ? { hashUnknown: true } : {}),
        },
        { signal: opts.signal, onProgress: (p) => opts.onProgress?.(before + p.done, wanted.length) },
      );
      done += group.length;
      for (const w of result.warnings) this.log.warn(w);
      for (const a of result.found) {
        const r = group.find((x) => x.layer === a.name);
        if (!r) continue;
        const key = this.keyOf(r);
        this.requests.set(key, r);
        this.analyses.put(key, a);
        this.requests.delete(key);
        found++;
      }
    }
    return { found, asked: wanted.length };
  }

  keyOf(r: AnalysisRequest): string {
    return analysisKey(r.checkpoint, r.layer, r.settings, r.calibration);
  }

  /** A finished analysis from the cache, or undefined. */
  peek(r: AnalysisRequest): LayerAnalysis | undefined {
    return this.analyses.peek(this.keyOf(r));
  }

  isRunning(r: AnalysisRequest): boolean {
    return this.analyses.isRunning(this.keyOf(r));
  }

  /**
   * The analysis of a layer. With `firstRank` (the panel's current rank) it runs progressively:
   * partial results (LayerAnalysis.preview) arrive through onProgress before the full one. With
   * `shareWorker` it may run on a worker beside one other such analysis (pool.ts).
   */
  async analyze(
    r: AnalysisRequest,
    opts: {
      signal?: AbortSignal;
      onProgress?: (p: AnalysisProgress) => void;
      firstRank?: number;
      shareWorker?: boolean;
    } = {},
  ): Promise<AnalysisOutcome> {
    const key = this.keyOf(r);
    const hit = this.analyses.peek(key);
    if (hit) {
      this.log.debug(`cache hit: ${r.layer} [${describe(r.settings)}]`);
      return { analysis: hit, cached: true, timeMs: 0 };
    }
    const t0 = Date.now();
    await this.storeReady;
    const store = this.storeDir;
    const analysis = await this.analyses.get(
      key,
      async (signal, onProgress) => {
        this.requests.set(key, r);
        const started = Date.now();
        this.log.info(`analyse ${r.layer} [${describe(r.settings)}]${r.calibration ? ` with ${r.calibration}` : ''}`);
        try {
          const a = await this.pool.call(
            'analyzeLayer',
            {
              checkpoint: r.checkpoint,
              layer: r.layer,
              settings: r.settings,
              ...(r.calibration ? { calibration: r.calibration } : {}),
              ...(opts.firstRank !== undefined ? { progressive: true, firstRank: opts.firstRank } : {}),
              ...(store ? { store } : {}),
            },
            { signal, onProgress, shareWorker: opts.shareWorker ?? false },
          );
          for (const w of a.stored?.warnings ?? []) this.log.warn(w);
          if (a.stored?.source === 'store') {
            this.log.info(
              `read ${r.layer} from the result store in ${Date.now() - started} ms (computed ${a.stored.computedAt} in ${Math.round(a.stored.computeMs)} ms)`,
            );
            return a;
          }
          const steps = Object.entries(a.timings)
            .map(([k, v]) => `${k} ${Math.round(v)} ms`)
            .join(', ');
          const routes = a.spectrumRoutes ? `; spectra ${a.spectrumRoutes.plain}, ${a.spectrumRoutes.scaled}` : '';
          this.log.info(`analysed ${r.layer} in ${Date.now() - started} ms${steps ? ` (${steps}${routes})` : ''}`);
          return a;
        } catch (e) {
          this.requests.delete(key);
          if (isCancellation(e)) this.log.info(`cancelled ${r.layer} after ${Date.now() - started} ms`);
          throw e;
        }
      },
      opts,
    );
    return { analysis, cached: false, timeMs: Date.now() - t0 };
  }

  /** Forgets every cached analysis (after the calibration file changed on disk, say). */
  clearCache(): void {
    this.analyses.clear();
  }

  dispose(): void {
    this.analyses.cancelAll();
    for (const d of this.disposables) d.dispose();
    void this.currentPool.dispose();
  }
}

function describe(s: AnalysisSettings): string {
  return `${s.method}, W ${s.weightFormat}, A/B ${s.factorFormat}, R ${s.maxRank}${s.spectra === false ? ', no spectra' : ''}`;
}
