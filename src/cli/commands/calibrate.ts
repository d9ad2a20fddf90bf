/** `quant-lens calibrate <model.onnx> --data <inputs> --out <stats.safetensors>`: activation statistics with onnxruntime. */
import { QuantLensError } from '../../engine/errors';
import { calibrateToFile } from '../../engine/calibration/calibrateOnnx';
import { parse, requirePositional } from '../args';
import { BOUNDS, intOption } from '../numbers';

export const calibrateHelp = `quant-lens calibrate <model.onnx> --data <folder|text> --out <stats.safetensors> [options]
  Runs the model on calibration inputs with onnxruntime and records, at the input of every linear
  layer (MatMul/Gemm with a constant weight, 1×1 Conv), act_mean_abs (max over batches of the
  per-batch mean |x|, as LQER), act_rms and, with --gram, act_gram, keyed by the weight's name.
  --data <path>       image models: a folder of PNG images; language models: a text file
  --tokenizer <file>  tokenizer.json for language models
  --seq-len <n>       tokens per sequence (default 128)
  --batch-size <n>    images or sequences per calibration batch (default 8 images, 2 sequences)
  --max-samples <n>   use at most this many images or sequences
  --gram              also record E[x xᵀ] (QERA-exact; in² values per layer)
  --samples <n>       also keep n activation rows per layer (act_samples, for \`quant-lens reassemble\`)
  --layers <regex>    only layers whose name matches
  --threads <n>       onnxruntime threads (default: all cores)
  --force             replace --out when it exists (never one of the inputs)
  --json              print a JSON summary`;

export function regexOption(v: string | undefined, flag: string): RegExp | undefined {
  if (v === undefined) return undefined;
  try {
    return new RegExp(v);
  } catch (e) {
    throw new QuantLensError('bad-argument', `${flag}: ${(e as Error).message}`);
  }
}

export async function calibrateCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      data: { type: 'string' },
      out: { type: 'string' },
      tokenizer: { type: 'string' },
      'seq-len': { type: 'string' },
      'batch-size': { type: 'string' },
      'max-samples': { type: 'string' },
      gram: { type: 'boolean' },
      samples: { type: 'string' },
      layers: { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean' },
      force: { type: 'boolean' },
    },
    ['<model.onnx>'],
  );
  const model = requirePositional(positionals, 0, 'model path (.onnx)');
  if (!values.data) throw new QuantLensError('bad-argument', 'missing --data <folder of images | text file>');
  if (!values.out) throw new QuantLensError('bad-argument', 'missing --out <stats.safetensors>');
  const pattern = regexOption(values.layers, '--layers');
  const seqLen = intOption(values['seq-len'], '--seq-len', BOUNDS.seqLen);
  const batchSize = intOption(values['batch-size'], '--batch-size', BOUNDS.batchSize);
  const maxSamples = intOption(values['max-samples'], '--max-samples', BOUNDS.maxSamples);
  const threads = intOption(values.threads, '--threads', BOUNDS.threads);
  const sampleRows = intOption(values.samples, '--samples', BOUNDS.samples);
  let last = 0;
  const r = await calibrateToFile({
    model,
    data: values.data,
    out: values.out,
    force: !!values.force,
    ...(values.tokenizer ? { tokenizer: values.tokenizer } : {}),
    seqLen,
    batchSize,
    maxSamples,
    threads,
    gram: !!values.gram,
    ...(sampleRows !== undefined ? { sampleRows } : {}),
    layers: { all: true, ...(pattern ? { pattern } : {}) },
    onProgress: (p) => {
      if (values.json || !process.stderr.isTTY || Date.now() - last < 200) return;
      last = Date.now();
      process.stderr.write(`\rcalibrating: batch ${p.batchesDone}/${p.batches} (${p.samplesDone} samples)`);
    },
  });
  if (!values.json && process.stderr.isTTY) process.stderr.write('\n');
  const summary = {
    out: values.out,
    layers: r.stats.size,
    samples: r.samples,
    batches: r.batches,
    seconds: Number(r.seconds.toFixed(2)),
    tokens: Object.fromEntries([...r.stats].map(([k, s]) => [k, s.tokens])),
  };
  if (values.json) out.write(JSON.stringify(summary, null, 1) + '\n');
  else {
    out.write(
      `wrote ${values.out}: ${r.stats.size} layers, ${r.samples} ${r.kind === 'text' ? 'sequences' : 'images'} in ${r.batches} batches, ${r.seconds.toFixed(1)} s\n`,
    );
  }
  return 0;
}
