/**
 * Dense matrix products through onnxruntime's MLAS kernels. A plain JS loop reaches about
 * 1.5 GFLOP/s on our 2-core machines, onnxruntime-node's MatMul about 200 GFLOP/s (float32) and
 * 90-150 GFLOP/s (float64), so every O(n³) step of the engine is phrased as a call here.
 *
 * Matrices are row-major typed arrays. One InferenceSession is created per distinct kernel
 * (op, dtype, transposes, alpha/beta) with symbolic shapes and reused for all calls.
 */
import type * as OrtTypes from 'onnxruntime-node';
import { buildModel, OnnxType, type NodeSpec } from '../onnx/builder';
import { ort } from '../ort';

export type FloatArray = Float32Array | Float64Array;
export type DType = 'float32' | 'float64';

/** A row-major matrix view. */
export interface Mat<T extends FloatArray = FloatArray> {
  data: T;
  rows: number;
  cols: number;
}

export function mat<T extends FloatArray>(data: T, rows: number, cols: number): Mat<T> {
  if (data.length !== rows * cols) throw new Error(`matrix data has ${data.length} elements, expected ${rows}×${cols}`);
  return { data, rows, cols };
}

export function dtypeOf(a: FloatArray): DType {
  return a instanceof Float64Array ? 'float64' : 'float32';
}

/** A row-major tensor for {@link Kernels.run}. */
export interface TensorArg {
  data: FloatArray | BigInt64Array;
  dims: readonly number[];
}

export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  /** Result = alpha·op(A)·op(B) + beta·C. Defaults 1 and 1 (beta only matters with C). */
  alpha?: number;
  beta?: number;
}

export interface KernelOptions {
  /** onnxruntime intra-op threads; defaults to the number of CPU cores. */
  threads?: number;
  /**
   * Let onnxruntime's idle pool threads spin-wait for the next call (its default). Off by default:
   * our kernel calls alternate with JS work, and a spinning thread then burns a whole core for
   * milliseconds after every call (measured: 2× the process's CPU time during a JS phase), which
   * on a 2-core machine takes the core from the JS thread or from other processes.
   */
  spinning?: boolean;
  /**
   * Keep onnxruntime's per-session memory arena (its default). Off by default: each session's
   * arena takes fresh memory for its intermediates on its first run and keeps it, so every graph
   * that runs once per layer (the randomized SVD's steps, its basis and projection) paid first-touch
   * page faults for its own copies — 20–30 ms per 11 MB block on these VMs, ~0.35 s of a 1.6 s
   * 14336×4096 first-numbers run. Without it, intermediates come from malloc and reuse what earlier
   * graphs freed (measured: first numbers 1.5–1.7 s → 1.2–1.3 s, a TinyLlama block's sweep 2.7–9 %
   * faster with 80 MB less peak RSS; the full spectrum level).
   */
  arena?: boolean;
}

export class Kernels {
  private sessions = new Map<string, Promise<OrtTypes.InferenceSession>>();
  private readonly threads: number;
  private readonly spinning: boolean;
  private readonly arena: boolean;

  constructor(options: KernelOptions = {}) {
    this.threads = options.threads ?? defaultThreads();
    this.spinning = options.spinning ?? false;
    this.arena = options.arena ?? false;
  }

  private session(key: string, build: () => Uint8Array): Promise<OrtTypes.InferenceSession> {
    let s = this.sessions.get(key);
    if (!s) {
      s = ort().InferenceSession.create(build(), {
        intraOpNumThreads: this.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        enableCpuMemArena: this.arena,
        executionMode: 'sequential',
        extra: { session: { intra_op: { allow_spinning: this.spinning ? '1' : '0' } } },
      });
      this.sessions.set(key, s);
    }
    return s;
  }

  /** op(A)·op(B), with op = transpose where asked. */
  async matmul<T extends FloatArray>(a: Mat<T>, b: Mat<T>, opts: Omit<GemmOptions, 'beta'> = {}): Promise<Mat<T>> {
    return this.gemm(a, b, undefined, opts);
  }

  /** alpha·op(A)·op(B) + beta·C, computed by onnxruntime (MLAS). A, B (and C) share one dtype. */
  async gemm<T extends FloatArray>(
    a: Mat<T>,
    b: Mat<T>,
    c: Mat<T> | undefined,
    opts: GemmOptions = {},
  ): Promise<Mat<T>> {
    const transA = !!opts.transA;
    const transB = !!opts.transB;
    const alpha = opts.alpha ?? 1;
    const beta = c ? (opts.beta ?? 1) : 0;
    const m = transA ? a.cols : a.rows;
    const k = transA ? a.rows : a.cols;
    const k2 = transB ? b.cols : b.rows;
    const n = transB ? b.rows : b.cols;
    if (k !== k2) throw new Error(`gemm: inner dimensions differ (${k} vs ${k2})`);
    if (c && (c.rows !== m || c.cols !== n)) throw new Error(`gemm: C is ${c.rows}×${c.cols}, expected ${m}×${n}`);
    const dtype = dtypeOf(a.data);
    if (m === 0 || n === 0) return { data: newArray(dtype, 0) as T, rows: m, cols: n };
    if (k === 0) {
      const out = newArray(dtype, m * n) as T;
      if (c) for (let i = 0; i < out.length; i++) out[i] = beta * c.data[i]!;
      return { data: out, rows: m, cols: n };
    }
    const plain = !transA && !transB && alpha === 1 && !c;
    const key = plain ? `matmul:${dtype}` : `gemm:${dtype}:${+transA}${+transB}:${alpha}:${beta}:${c ? 'c' : ''}`;
    const elem = dtype === 'float32' ? OnnxType.FLOAT : OnnxType.DOUBLE;
    const session = await this.session(key, () => {
      const node: NodeSpec = plain
        ? { op: 'MatMul', inputs: ['A', 'B'], outputs: ['Y'] }
        : {
            op: 'Gemm',
            inputs: c ? ['A', 'B', 'C'] : ['A', 'B'],
            outputs: ['Y'],
            attributes: {
              transA: { kind: 'int', value: +transA },
              transB: { kind: 'int', value: +transB },
              alpha: { kind: 'float', value: alpha },
              beta: { kind: 'float', value: beta },
            },
          };
      const inputs = [
        { name: 'A', elemType: elem, dims: ['a0', 'a1'] },
        { name: 'B', elemType: elem, dims: ['b0', 'b1'] },
      ];
      if (c) inputs.push({ name: 'C', elemType: elem, dims: ['c0', 'c1'] });
      return buildModel({
        name: key,
        nodes: [node],
        inputs,
        outputs: [{ name: 'Y', elemType: elem, dims: ['y0', 'y1'] }],
      });
    });
    const O = ort();
    const feeds: Record<string, OrtTypes.Tensor> = {
      A: new O.Tensor(dtype, a.data, [a.rows, a.cols]),
      B: new O.Tensor(dtype, b.data, [b.rows, b.cols]),
    };
    if (c) feeds.C = new O.Tensor(dtype, c.data, [c.rows, c.cols]);
    const out = await session.run(feeds);
    const y = out.Y!;
    return { data: y.data as T, rows: m, cols: n };
  }

  /**
   * Runs a small custom graph (built once per `key`, reused for every call) on row-major tensors.
   * Inputs are passed without copying; every output comes back as a fresh array, which costs a
   * page fault per 4 KiB on first touch, unless `outputs` gives buffers of the exact output shapes
   * to write into (then those are what comes back).
   */
  async run(
    key: string,
    build: () => Uint8Array,
    feeds: Record<string, TensorArg>,
    outputs?: Record<string, TensorArg>,
  ): Promise<Record<string, TensorArg>> {
    const session = await this.session(key, build);
    const O = ort();
    const tensor = (t: TensorArg) =>
      new O.Tensor(t.data instanceof BigInt64Array ? 'int64' : dtypeOf(t.data), t.data, [...t.dims]);
    const ortFeeds: Record<string, OrtTypes.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = tensor(t);
    let out: OrtTypes.InferenceSession.OnnxValueMapType;
    if (outputs) {
      // Outputs written into the caller's buffers: no fresh memory (and its page faults) per call.
      const fetches: Record<string, OrtTypes.Tensor | null> = {};
      for (const name of session.outputNames) fetches[name] = outputs[name] ? tensor(outputs[name]) : null;
      out = await session.run(ortFeeds, fetches);
    } else out = await session.run(ortFeeds);
    const result: Record<string, TensorArg> = {};
    for (const [name, t] of Object.entries(out)) {
      const given = outputs?.[name];
      result[name] = given ?? { data: t.data as FloatArray | BigInt64Array, dims: [...t.dims] };
    }
    return result;
  }

  async dispose(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).release();
  }
}

export function newArray(dtype: DType, n: number): FloatArray {
  return dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
}

function defaultThreads(): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const os = require('node:os') as typeof import('node:os');
  return Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
}

let shared: Kernels | undefined;
/** The process-wide (or worker-wide) kernel set. */
export function kernels(): Kernels {
  shared ??= new Kernels();
  return shared;
}
