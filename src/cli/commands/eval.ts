/** `quant-lens eval <model.onnx> --data …`: task metric of the float model and of its quantized copy. */
import { QuantLensError } from '../../engine/errors';
import { calibrateOnnx } from '../../engine/calibration/calibrateOnnx';
import { openOnnxLinearModel, selectSites } from '../../engine/calibration/linearSites';
import { StatsFile } from '../../engine/calibration/statsFile';
import { EVAL_TASKS, Evaluator, type EvalTask } from '../../engine/evaluation/evaluate';
import { activationSpec, runSweep, type CalibrationSource, type SweepGrid } from '../../engine/evaluation/sweep';
import { FULL_RANK, formatMetric, metricName, rankLabel, sweepTable } from '../../engine/evaluation/sweepTable';
import { defaultMethod, isMethodName, METHOD_NAMES, METHODS, type MethodName } from '../../engine/methods/methods';
import { parse, requirePositional } from '../args';
import { formatTable } from '../table';
import { regexOption } from './calibrate';
import { parseFormat } from '../../engine/quantizers';
import { BOUNDS, intOption } from '../numbers';

export const evalHelp = `quant-lens eval <model.onnx> --data <folder|text> [options]
  Measures the task metric of the float model and of the quantized one (each processed weight
  replaced by W_q + (A·B)ᵀ in a copy of the graph), with onnxruntime: CER for a CTC text
  recognizer (labels.txt in the image folder, ppocr_keys_v1.txt beside the model or --dict),
  perplexity for causal LMs (non-overlapping windows), cosine similarity to the float outputs else.
  --method <m>          ${METHOD_NAMES.join(' | ')} (default l2qer)
  --format <f>          weight format (default mxint4)
  --rank <k|full>       rank of the correction (default 32)
  --factor-format <f>   format of A and B (default mxint8)
  --act-format <f>      fake-quantize linear inputs and xA, xAB (e.g. mxint8, mxint6; blocks of 16)
  --stats <file>        calibration statistics (quant-lens calibrate); needed by l2qer, qera-*
  --calib-data <path>   calibrate on this data first instead of --stats (--calib-samples <n> caps it)
  --sweep               run a grid: --methods a,b,… × --ranks 4,8,… × --formats mxint4,mxint3,…
  --task <t>            cer | perplexity | cosine | kld (default: from the model). kld: KL divergence
                        of each quantized next-token distribution from the float model's, per
                        predicted token: mean, median, 99th and 99.9th percentiles, maximum, the
                        same-top-token rate and both perplexities (llama-perplexity's figures)
  --tokenizer <file>    tokenizer.json (language models)   --seq-len <n>  (default 128)
  --batch-size <n>      --max-samples <n>   --dict <file>   --threads <n>
  --layers <regex>      only these layers   --all-layers  include heads (classifier, lm_head)
  --json                one JSON document`;

function list<T>(v: string | undefined, parseItem: (s: string) => T): T[] | undefined {
  return v === undefined ? undefined : v.split(',').map((s) => parseItem(s.trim()));
}

function parseRank(s: string): number {
  if (s === 'full') return FULL_RANK;
  return intOption(s, 'a rank (or "full")', BOUNDS.rank)!;
}

function parseMethod(s: string): MethodName {
  if (!isMethodName(s))
    throw new QuantLensError('bad-argument', `unknown method "${s}" (use ${METHOD_NAMES.join(', ')})`);
  return s;
}

function parseTask(s: string | undefined): EvalTask | undefined {
  if (s === undefined) return undefined;
  const task = EVAL_TASKS.find((t) => t === s);
  if (!task) throw new QuantLensError('bad-argument', `--task must be one of ${EVAL_TASKS.join(', ')}; got "${s}"`);
  return task;
}

export async function evalCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      data: { type: 'string' },
      tokenizer: { type: 'string' },
      'seq-len': { type: 'string' },
      'batch-size': { type: 'string' },
      'max-samples': { type: 'string' },
      method: { type: 'string' },
      methods: { type: 'string' },
      format: { type: 'string' },
      formats: { type: 'string' },
      rank: { type: 'string' },
      ranks: { type: 'string' },
      'factor-format': { type: 'string' },
      'act-format': { type: 'string' },
      stats: { type: 'string' },
      'calib-data': { type: 'string' },
      'calib-samples': { type: 'string' },
      sweep: { type: 'boolean' },
      task: { type: 'string' },
      dict: { type: 'string' },
      threads: { type: 'string' },
      layers: { type: 'string' },
      'all-layers': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    ['<model.onnx>'],
  );
  const model = requirePositional(positionals, 0, 'model path (.onnx)');
  if (!values.data) throw new QuantLensError('bad-argument', 'missing --data <evaluation images folder | text file>');
  for (const [grid, single] of [
    ['methods', 'method'],
    ['ranks', 'rank'],
    ['formats', 'format'],
  ] as const) {
    if (!values.sweep && values[grid] !== undefined) {
      throw new QuantLensError('bad-argument', `--${grid} applies with --sweep; without it give --${single}`);
    }
    if (values.sweep && values[single] !== undefined) {
      throw new QuantLensError('bad-argument', `--${single} does not apply with --sweep; give --${grid}`);
    }
  }
  // Checked now (a bad format fails before any model is run), passed on as written.
  const weightFormat = (s: string) => (parseFormat(s), s);
  const maxSamples = intOption(values['max-samples'], '--max-samples', BOUNDS.maxSamples);
  const calibSamples = intOption(values['calib-samples'], '--calib-samples', BOUNDS.maxSamples);
  const grid: SweepGrid = values.sweep
    ? {
        methods: list(values.methods, parseMethod) ?? [...METHOD_NAMES],
        ranks: list(values.ranks, parseRank) ?? [4, 8, 16, 32],
        weightFormats: list(values.formats, weightFormat) ?? ['mxint4', 'mxint3', 'mxint2'],
        factorFormat: weightFormat(values['factor-format'] ?? 'mxint8'),
        activation: activationSpec(values['act-format']),
      }
    : {
        methods: [values.method === undefined ? defaultMethod(true) : parseMethod(values.method)],
        ranks: [values.rank === undefined ? 32 : parseRank(values.rank)],
        weightFormats: [weightFormat(values.format ?? 'mxint4')],
        factorFormat: weightFormat(values['factor-format'] ?? 'mxint8'),
        activation: activationSpec(values['act-format']),
      };
  const common = {
    ...(values.tokenizer ? { tokenizer: values.tokenizer } : {}),
    seqLen: intOption(values['seq-len'], '--seq-len', BOUNDS.seqLen),
    batchSize: intOption(values['batch-size'], '--batch-size', BOUNDS.batchSize),
    threads: intOption(values.threads, '--threads', BOUNDS.threads),
  };
  const pattern = regexOption(values.layers, '--layers');
  const task = parseTask(values.task);
  const m = await openOnnxLinearModel(model);
  let calibration: CalibrationSource = null;
  let evaluator: Evaluator | undefined;
  try {
    const sites = selectSites(m.sites, { all: !!values['all-layers'], ...(pattern ? { pattern } : {}) }, model);
    // The evaluation data first: labels and dictionary problems show before any calibration runs.
    evaluator = Evaluator.open(m, {
      data: values.data,
      ...common,
      maxSamples,
      ...(values.dict ? { dict: values.dict } : {}),
      ...(task ? { task } : {}),
    });
    for (const note of evaluator.notes) process.stderr.write(`note: ${note}\n`);
    if (values.stats) calibration = await StatsFile.open(values.stats);
    else if (values['calib-data']) {
      const needsGram = grid.methods.some((m) => METHODS[m].needs === 'act_gram');
      calibration = (
        await calibrateOnnx({
          model,
          data: values['calib-data'],
          gram: needsGram,
          ...common,
          maxSamples: calibSamples,
        })
      ).stats;
    } else {
      const needing = grid.methods.filter((x) => METHODS[x].needs);
      if (needing.length && !values.sweep) {
        throw new QuantLensError(
          'needs-calibration',
          `${METHODS[needing[0]!].label} needs calibration: pass --stats <file> (quant-lens calibrate) or --calib-data <path>`,
        );
      }
    }
    const progress = !values.json && process.stderr.isTTY;
    const result = await runSweep(evaluator, sites, calibration, grid, {
      onRow: (r) => {
        if (progress) {
          process.stderr.write(
            `${METHODS[r.method].label} ${r.weightFormat} rank ${rankLabel(r.rank)}: ${r.skipped ?? formatMetric(r.result)}\n`,
          );
        }
      },
    });
    const measured = evaluator.task;
    if (values.json) {
      out.write(
        JSON.stringify(
          {
            task: measured,
            notes: evaluator.notes,
            layers: sites.map((s) => s.layer.name),
            samples: result.float.samples,
            activationFormat: values['act-format'] ?? null,
            factorFormat: grid.factorFormat,
            float: result.float,
            rows: result.rows.map((r) => ({ ...r, rank: r.rank >= FULL_RANK ? 'full' : r.rank })),
          },
          null,
          1,
        ) + '\n',
      );
      return 0;
    }
    const heading = `${metricName(measured)} on ${result.float.samples} ${measured === 'perplexity' || measured === 'kld' ? 'windows' : 'samples'}, ${sites.length} layers quantized, A/B ${grid.factorFormat}${values['act-format'] ? `, activations ${values['act-format']}` : ''}`;
    if (values.sweep) {
      const t = sweepTable(result);
      out.write(`${heading}\n${formatTable(t.header, t.rows)}\n`);
    } else {
      const r = result.rows[0]!;
      out.write(`${heading}\n`);
      out.write(`float: ${formatMetric(result.float)}\n`);
      out.write(
        `${METHODS[r.method].label} ${r.weightFormat} rank ${rankLabel(r.rank)}: ${r.skipped ?? formatMetric(r.result)}\n`,
      );
    }
    return 0;
  } finally {
    await evaluator?.dispose();
    if (calibration instanceof StatsFile) await calibration.close();
    await m.close();
  }
}
