/**
 * Calibration or evaluation data for one model, as a sequence of batches that are built only when
 * asked for: a folder of images for image models, a text file plus tokenizer.json for language
 * models. Holding one batch at a time keeps memory bounded by the batch size.
 */
import { QuantLensError } from '../errors';
import { ort, type OrtTensor } from '../evaluation/session';
import { imageBatch, listImageFolder, type ImageItem } from './imageInputs';
import { lmFeeds, type ModelIO } from './modelInputs';
import { checkVocabulary, tokenizeFile, tokenWindows } from './textInputs';

export interface DatasetOptions {
  /** Image folder (image models) or text file (language models). */
  data: string;
  tokenizer?: string;
  /** Tokens per window (language models). Default 128. */
  seqLen?: number;
  /** Images or windows per batch. Default 8 images or 2 windows (the LQER paper's calibration batch). */
  batchSize?: number;
  /** Use at most this many images or windows. */
  maxSamples?: number;
  /** Image height when the model's input does not fix it. Default 48 (PP-OCR recognizers). */
  imageHeight?: number;
  /** Widest resized image (when the model's width is not fixed). Default 960 (PaddleOCR's 20:1 cap at 48 px). */
  maxWidth?: number;
  /** Image folders: only the images labels.txt labels (a metric against ground truth). */
  labelledOnly?: boolean;
}

export interface Batch {
  feeds: Record<string, OrtTensor>;
  size: number;
  /** Image batches: the images, with labels when the folder has them. */
  items?: ImageItem[];
  /** Text batches: the token windows. */
  windows?: Int32Array[];
}

export interface Dataset {
  kind: 'image' | 'text';
  samples: number;
  /** Samples per batch (the last batch may hold fewer). */
  batchSize: number;
  /** Image folders: how many images labels.txt labels, and how many it does not (before labelledOnly). */
  labels?: { labelled: number; unlabelled: number };
  batches: number;
  batch(index: number): Batch;
}

/**
 * The batch size: as asked, or the default; a model exported with a fixed batch dimension takes
 * exactly that many per run, so that is the default there and anything else is refused, saying
 * which --batch-size to use.
 */
function batchSizeFor(io: ModelIO, asked: number | undefined, dflt: number): number {
  if (io.fixedBatch === null) return Math.max(1, asked ?? dflt);
  if (asked !== undefined && asked !== io.fixedBatch) {
    throw new QuantLensError(
      'bad-argument',
      `input "${io.batchInput}" has a fixed batch dimension of ${io.fixedBatch}: use --batch-size ${io.fixedBatch} (or leave it out)`,
      io.path,
    );
  }
  return io.fixedBatch;
}

/** A fixed batch takes only whole batches: the samples that do not fill the last one are left out. */
function wholeBatches<T>(items: T[], size: number, io: ModelIO, what: string): T[] {
  if (io.fixedBatch === null) return items;
  if (items.length < size) {
    throw new QuantLensError(
      'bad-argument',
      `input "${io.batchInput}" takes batches of exactly ${size}, and there are only ${items.length} ${what}`,
      io.path,
    );
  }
  return items.slice(0, items.length - (items.length % size));
}

export function openDataset(io: ModelIO, o: DatasetOptions): Dataset {
  const limit = o.maxSamples ?? Infinity;
  if (io.kind === 'lm') {
    if (!o.tokenizer) throw new QuantLensError('bad-argument', 'a language model needs --tokenizer <tokenizer.json>');
    if (io.fixedSeqLen !== null && o.seqLen !== undefined && o.seqLen !== io.fixedSeqLen) {
      throw new QuantLensError(
        'bad-argument',
        `input "${io.ids}" has a fixed sequence length of ${io.fixedSeqLen}: use --seq-len ${io.fixedSeqLen} (or leave it out)`,
        io.path,
      );
    }
    const seqLen = o.seqLen ?? io.fixedSeqLen ?? 128;
    const size = batchSizeFor(io, o.batchSize, 2);
    const text = tokenizeFile(o.data, o.tokenizer);
    checkVocabulary(text.ids, io.vocab, o.tokenizer);
    const windows = wholeBatches(tokenWindows(text.ids, seqLen, limit), size, io, `windows of ${seqLen} tokens`);
    if (windows.length === 0) {
      throw new QuantLensError(
        'bad-argument',
        `has ${text.ids.length} tokens, fewer than one window of ${seqLen}`,
        o.data,
      );
    }
    return {
      kind: 'text',
      samples: windows.length,
      batchSize: size,
      batches: Math.ceil(windows.length / size),
      batch(i) {
        const w = windows.slice(i * size, (i + 1) * size);
        return { feeds: lmFeeds(io, w), size: w.length, windows: w };
      },
    };
  }
  if (o.tokenizer) throw new QuantLensError('bad-argument', 'this is an image model; --tokenizer does not apply');
  const all = listImageFolder(o.data);
  const labelled = all.filter((i) => i.label !== undefined).length;
  const size = batchSizeFor(io, o.batchSize, 8);
  const items = wholeBatches(
    (o.labelledOnly ? all.filter((i) => i.label !== undefined) : all).slice(0, limit),
    size,
    io,
    'images',
  );
  const options = {
    channels: io.channels,
    height: io.height ?? o.imageHeight ?? 48,
    width: io.width,
    maxWidth: o.maxWidth ?? 960,
    widthMultiple: 8,
  };
  return {
    kind: 'image',
    samples: items.length,
    batchSize: size,
    labels: { labelled, unlabelled: all.length - labelled },
    batches: Math.ceil(items.length / size),
    batch(i) {
      const group = items.slice(i * size, (i + 1) * size);
      const t = imageBatch(
        group.map((g) => g.path),
        options,
      );
      return { feeds: { [io.input]: new (ort().Tensor)('float32', t.data, t.dims) }, size: group.length, items: group };
    },
  };
}
