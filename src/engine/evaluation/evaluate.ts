/**
 * Runs a model (float, or an edited quantized copy) over an evaluation set and measures its task
 * metric. What the metric needs is computed inside the graph so that little leaves onnxruntime:
 * the per-step best class for CTC (ArgMax), the per-token NLL for language models (LogSoftmax and
 * GatherElements on the labels). Cosine similarity compares whole outputs with the float model's,
 * batch by batch, so nothing is kept across batches. KL divergence needs both models' whole
 * next-token distributions: the float model's logits are kept from its own evaluation while they
 * fit a memory budget (`kldCacheBytes`, 1 GiB by default) and recomputed batch by batch beyond it.
 */
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { QuantLensError, throwIfCancelled } from '../errors';
import { OnnxType } from '../onnx/builder';
import { openDataset, type Dataset, type DatasetOptions } from '../calibration/dataset';
import type { OnnxLinearModel } from '../calibration/linearSites';
import { describeModelIO, type ModelIO } from '../calibration/modelInputs';
import type { GraphEdits } from './graphEdit';
import { GraphBuilder } from './graphBuilder';
import {
  CerAccumulator,
  CosineAccumulator,
  ctcGreedyDecode,
  KldAccumulator,
  PerplexityAccumulator,
  readCtcAlphabet,
  type CtcAlphabet,
  type KldSummary,
} from './metrics';
import { openEditedSession, ort, type EditedSession, type OrtTensor, type SessionOptions } from './session';
import { LABELS_FILE } from '../calibration/imageInputs';

export type EvalTask = 'cer' | 'perplexity' | 'cosine' | 'kld';

export const EVAL_TASKS: readonly EvalTask[] = ['cer', 'perplexity', 'cosine', 'kld'];

export interface EvaluatorOptions extends DatasetOptions, SessionOptions {
  /** Default: perplexity for language models, CER for image models with labels and a dictionary, else cosine. */
  task?: EvalTask;
  /** CTC character dictionary; default ppocr_keys_v1.txt beside the model. */
  dict?: string;
  /** KL divergence: the most bytes of float logits kept between evaluations (default 1 GiB). */
  kldCacheBytes?: number;
}

export interface MetricResult {
  task: EvalTask;
  /** CER (0…1), perplexity, mean cosine similarity, or mean KL divergence (nats per token). */
  value: number;
  samples: number;
  /** CER: lines read exactly; perplexity: predicted tokens. */
  detail: Record<string, number>;
  /** KL divergence: the distribution over tokens and the perplexities of both models. */
  kld?: KldSummary;
  examples?: { reference: string; prediction: string }[];
  seconds: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

const LABELS = 'quant_lens_eval_labels';
const NLL = 'quant_lens_eval/nll';
const BEST = 'quant_lens_eval/best_class';
const LOGITS = 'quant_lens_eval/logits_f32';
const DEFAULT_KLD_CACHE_BYTES = 2 ** 30;

function mergeEdits(a: GraphEdits, b: GraphEdits): GraphEdits {
  return {
    ...a,
    addOutputs: [...(a.addOutputs ?? []), ...(b.addOutputs ?? [])],
    addInputs: [...(a.addInputs ?? []), ...(b.addInputs ?? [])],
    addInitializers: [...(a.addInitializers ?? []), ...(b.addInitializers ?? [])],
    appendNodes: [...(a.appendNodes ?? []), ...(b.appendNodes ?? [])],
  };
}

export class Evaluator {
  private floatSession: EditedSession | undefined;
  /** KL divergence: the float model's logits per batch, while they fit the budget. */
  private readonly floatLogits = new Map<number, Float32Array>();
  private floatLogitsBytes = 0;

  private constructor(
    readonly m: OnnxLinearModel,
    readonly io: ModelIO,
    readonly task: EvalTask,
    readonly dataset: Dataset,
    private readonly taskEdits: GraphEdits,
    private readonly alphabet: CtcAlphabet | null,
    private readonly options: EvaluatorOptions,
    /** What the user should know about the data: images left out of the CER for want of a label. */
    readonly notes: string[],
  ) {}

  /**
   * The task: as asked; else perplexity for a language model, CER for an image folder with
   * labels.txt (which then needs the CTC dictionary: no silent fall-back to another metric), cosine
   * similarity otherwise. CER is measured on the labelled images only, never against an empty
   * reference, and the notes say how many were left out.
   */
  static open(m: OnnxLinearModel, o: EvaluatorOptions): Evaluator {
    const io = describeModelIO(m.model);
    let dataset = openDataset(io, o);
    const dict = o.dict ?? join(dirname(m.model.path), 'ppocr_keys_v1.txt');
    if (o.dict !== undefined && !existsSync(o.dict)) {
      throw new QuantLensError('not-found', 'no such character dictionary (--dict)', o.dict);
    }
    const labels = dataset.labels;
    let task: EvalTask;
    if (o.task) task = o.task;
    else if (io.kind === 'lm') task = 'perplexity';
    else if (labels && labels.labelled > 0) {
      if (!existsSync(dict)) {
        throw new QuantLensError(
          'bad-argument',
          `labels.txt gives the images' text, but CER needs the recognizer's character dictionary: no ${dict}; give --dict <ppocr_keys.txt> (or --task cosine to compare with the float model instead)`,
          o.data,
        );
      }
      task = 'cer';
    } else task = 'cosine';
    const notes: string[] = [];
    if (task === 'cer' && labels) {
      if (labels.labelled === 0) {
        throw new QuantLensError(
          'bad-argument',
          `CER needs the images' text in ${LABELS_FILE} ("<file name>\t<text>" per line); no image here has one`,
          o.data,
        );
      }
      if (labels.unlabelled > 0) {
        dataset = openDataset(io, { ...o, labelledOnly: true });
        notes.push(
          `${labels.unlabelled} of ${labels.labelled + labels.unlabelled} images in ${o.data} have no line in ${LABELS_FILE} and are left out of the CER`,
        );
      }
    }
    if ((task === 'perplexity' || task === 'kld') && io.kind !== 'lm') {
      throw new QuantLensError(
        'bad-argument',
        `${task === 'kld' ? 'KL divergence' : 'perplexity'} needs a language model (token ids in, logits out)`,
        m.model.path,
      );
    }
    if (task === 'cer' && io.kind !== 'image') {
      throw new QuantLensError('bad-argument', 'CER needs an image model (a text recognizer)', m.model.path);
    }
    const output = m.model.graph.outputs.find((v) => v.name === io.output);
    const rank = output?.dims?.length ?? 3;
    const classes = output?.dims?.[rank - 1];
    const alphabet = task === 'cer' ? readCtcAlphabet(dict, typeof classes === 'number' ? classes : null) : null;
    const b = new GraphBuilder(m.opset, 'quant_lens_eval');
    const edits: GraphEdits = { addOutputs: [], addInputs: [], appendNodes: b.nodes, addInitializers: b.initializers };
    if (task === 'cer') {
      b.op(
        'ArgMax',
        [io.output],
        { axis: { kind: 'int', value: rank - 1 }, keepdims: { kind: 'int', value: 0 } },
        BEST,
      );
      edits.addOutputs!.push({ name: BEST, elemType: OnnxType.INT64 });
    } else if (task === 'perplexity') {
      if (m.opset < 11)
        throw new QuantLensError(
          'unsupported',
          `perplexity needs ONNX opset 11 or later (model: ${m.opset})`,
          m.model.path,
        );
      const logp = b.op('LogSoftmax', [b.castFloat(io.output)], { axis: { kind: 'int', value: -1 } });
      const picked = b.op('GatherElements', [logp, b.unsqueeze(LABELS, [2])], { axis: { kind: 'int', value: 2 } });
      b.op('Neg', [picked], undefined, NLL);
      edits.addInputs!.push({ name: LABELS, elemType: OnnxType.INT64, dims: ['batch', 'sequence'] });
      edits.addOutputs!.push({ name: NLL, elemType: OnnxType.FLOAT });
    } else if (task === 'kld') {
      b.op('Cast', [io.output], { to: { kind: 'int', value: OnnxType.FLOAT } }, LOGITS);
      edits.addOutputs!.push({ name: LOGITS, elemType: OnnxType.FLOAT });
    }
    return new Evaluator(m, io, task, dataset, edits, alphabet, o, notes);
  }

  /** The metric of the float model (`edits` omitted) or of the model with `edits` applied. */
  async evaluate(edits: GraphEdits | null, run: RunOptions = {}): Promise<MetricResult> {
    const started = performance.now();
    const s = await openEditedSession(this.m.model, mergeEdits(edits ?? {}, this.taskEdits), this.options);
    try {
      if (this.task === 'cosine') {
        this.floatSession ??= await openEditedSession(this.m.model, {}, this.options);
      }
      const r = this.task === 'kld' ? await this.measureKld(s, edits === null, run) : await this.measure(s, run);
      return { ...r, seconds: (performance.now() - started) / 1000 };
    } finally {
      await s.dispose();
    }
  }

  private async measure(s: EditedSession, run: RunOptions): Promise<Omit<MetricResult, 'seconds'>> {
    const cer = new CerAccumulator();
    const ppl = new PerplexityAccumulator();
    const cos = new CosineAccumulator();
    const examples: { reference: string; prediction: string }[] = [];
    const total = this.dataset.batches;
    for (let i = 0; i < total; i++) {
      throwIfCancelled(run.signal);
      const batch = this.dataset.batch(i);
      if (this.task === 'cer') {
        const r = await s.session.run(batch.feeds, [BEST]);
        const best = r[BEST]!;
        const steps = best.dims[1]!;
        const ids = best.data as BigInt64Array;
        batch.items!.forEach((item, n) => {
          // The recognizer reads the blank margins as spaces; labels have none there.
          const prediction = ctcGreedyDecode(ids.subarray(n * steps, (n + 1) * steps), this.alphabet!).trim();
          cer.add(prediction, (item.label ?? '').trim());
          if (examples.length < 5) examples.push({ reference: item.label ?? '', prediction });
        });
      } else if (this.task === 'perplexity') {
        const feeds: Record<string, OrtTensor> = { ...batch.feeds, [LABELS]: labelsTensor(batch.windows!) };
        const r = await s.session.run(feeds, [NLL]);
        const nll = r[NLL]!.data as Float32Array;
        const t = batch.windows![0]!.length;
        for (let n = 0; n < batch.size; n++) for (let j = 0; j < t - 1; j++) ppl.add(nll[n * t + j]!);
      } else {
        const name = this.io.output;
        const [q, f] = [
          await s.session.run(batch.feeds, [name]),
          await this.floatSession!.session.run(batch.feeds, [name]),
        ];
        cos.addBatch(f[name]!.data as Float32Array, q[name]!.data as Float32Array, batch.size);
      }
      run.onProgress?.(i + 1, total);
    }
    if (this.task === 'cer') {
      return { task: 'cer', value: cer.value, samples: cer.lines, detail: { exactLines: cer.exact }, examples };
    }
    if (this.task === 'perplexity') {
      return { task: 'perplexity', value: ppl.value, samples: this.dataset.samples, detail: { tokens: ppl.tokens } };
    }
    return { task: 'cosine', value: cos.value, samples: cos.samples, detail: {} };
  }

  /**
   * KL(float ‖ this model) per predicted token. On the float model's own pass (`isFloat`) its
   * logits are kept, batch by batch, while the budget allows; later passes read them back, or run
   * the float model again for the batches that did not fit.
   */
  private async measureKld(
    s: EditedSession,
    isFloat: boolean,
    run: RunOptions,
  ): Promise<Omit<MetricResult, 'seconds'>> {
    const acc = new KldAccumulator();
    const budget = this.options.kldCacheBytes ?? DEFAULT_KLD_CACHE_BYTES;
    const total = this.dataset.batches;
    for (let i = 0; i < total; i++) {
      throwIfCancelled(run.signal);
      const batch = this.dataset.batch(i);
      const q = (await s.session.run(batch.feeds, [LOGITS]))[LOGITS]!;
      const qLogits = q.data as Float32Array;
      let fLogits = isFloat ? qLogits : this.floatLogits.get(i);
      if (!fLogits) {
        this.floatSession ??= await openEditedSession(this.m.model, this.taskEdits, this.options);
        fLogits = (await this.floatSession.session.run(batch.feeds, [LOGITS]))[LOGITS]!.data as Float32Array;
      }
      if (isFloat && !this.floatLogits.has(i) && this.floatLogitsBytes + qLogits.byteLength <= budget) {
        this.floatLogits.set(i, qLogits);
        this.floatLogitsBytes += qLogits.byteLength;
      }
      const [, t = 0, vocab = 0] = q.dims;
      if (fLogits.length !== qLogits.length) throw new Error('float and quantized logits differ in shape');
      batch.windows!.forEach((w, n) => {
        for (let j = 0; j + 1 < t; j++) {
          const at = (n * t + j) * vocab;
          acc.add(fLogits.subarray(at, at + vocab), qLogits.subarray(at, at + vocab), w[j + 1]!);
        }
      });
      run.onProgress?.(i + 1, total);
    }
    const kld = acc.summary();
    return {
      task: 'kld',
      value: kld.mean,
      samples: this.dataset.samples,
      detail: { tokens: kld.tokens, perplexity: kld.perplexity, floatPerplexity: kld.floatPerplexity },
      kld,
    };
  }

  async dispose(): Promise<void> {
    await this.floatSession?.dispose();
    this.floatSession = undefined;
    this.floatLogits.clear();
    this.floatLogitsBytes = 0;
  }
}

/** labels[b, j] = ids[b, j + 1]; the last position has no next token (its NLL is ignored). */
function labelsTensor(windows: Int32Array[]): OrtTensor {
  const t = windows[0]!.length;
  const a = new BigInt64Array(windows.length * t);
  windows.forEach((w, b) => {
    for (let j = 0; j + 1 < t; j++) a[b * t + j] = BigInt(w[j + 1]!);
  });
  return new (ort().Tensor)('int64', a, [windows.length, t]);
}
