/**
 * `quant-lens allocate <checkpoint> --budget-bits 4.6`: chooses a rank (and optionally a weight
 * format) per layer under a memory budget, compares it with the uniform rank at the same budget,
 * and writes the allocation as a recipe for `quant-lens export --recipe`.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { QuantLensError } from '../../engine/errors';
import { StatsFile } from '../../engine/calibration/statsFile';
import { activationSpec } from '../../engine/evaluation/sweep';
import { formatMetric, metricName } from '../../engine/evaluation/sweepTable';
import {
  ALLOCATION_OBJECTIVES,
  allocate,
  allocationRecipe,
  optimumLowerBound,
  type AllocationObjective,
  type AllocationResult,
  type AllocationSummary,
  type Budget,
} from '../../engine/methods/allocation';
import { allocationInputs } from '../../engine/methods/allocationInputs';
import { METHOD_NAMES, METHODS } from '../../engine/methods/methods';
import { evaluateRecipes } from '../../engine/methods/recipeEvaluation';
import { layerSensitivities, type LayerSensitivity } from '../../engine/methods/layerSensitivity';
import { formatToString, parseFormat } from '../../engine/quantizers';
import { openCheckpoint } from '../../engine/readers/open';
import { checkOutputFile, checkpointInputs, writeOutputText, type OutputInput } from '../../engine/writers/safeOutput';
import { parse, requirePositional } from '../args';
import { analysisOptionSpec, resolveSettings, selectLayers } from '../analysisOptions';
import { ProgressBar } from '../progress';
import { formatTable } from '../table';
import { BOUNDS, intOption, numberOption } from '../numbers';
import { cliWarn, resolveShard, resolveStore, storeOptionSpec, storeOptionsHelp } from '../storeOptions';
import { estimatedCost, shardOf } from '../../engine/store/shard';
import { LayerResults } from '../../engine/store/storedAnalysis';

export const allocateHelp = `quant-lens allocate <checkpoint> (--budget-bits <b> | --budget-bytes <n>) [options]
  Chooses a rank per layer (and a weight format per layer from --formats) that minimises the summed
  error under a memory budget (A and B included), by a greedy over each layer's convex hull of
  (bits, error) points, checked against an exact DP; prints it beside the uniform rank at the same
  budget and writes it as a recipe for \`quant-lens export --recipe\`.
  --budget-bits <b>       average bits per weight over the allocated layers, A·B included
  --budget-bytes <n>      or a total byte budget
  --formats <f,f,…>       candidate weight formats (default: --format, i.e. mxint4)
  --format <fmt>          the single weight format when --formats is not given
  --max-rank <R>          largest rank considered (default 64)
  --method <m>            ${METHOD_NAMES.join(' | ')} (default: l2qer with --calib, else lqer)
  --ab-format <fmt>       format of A and B (default mxint8)   --ab-tiling last-dim | first-dim
  --calib <stats>         calibration statistics; enables the output-error objective
  --objective <o>         ${ALLOCATION_OBJECTIVES.join(' | ')}; default with --calib:
                          output-sensitivity for an ONNX model whose calibration inputs are at hand,
                          else output-relative; without calibration weight-relative
  --sensitivity-data <p>  ONNX models, output-sensitivity objective: calibration inputs on which each
                          layer's end-to-end sensitivity is measured (default: the stats file's
                          calibration_data); --sensitivity-samples <n> (48), --sensitivity-rank <k> (16),
                          --sensitivity-format <fmt> (the first of --formats) set the probe
  --layer <name|/re/>     layers to allocate (repeatable; default the layers quantized by default)   --all
  --fused                 fused groups: q/k/v of one attention, gate/up of one MLP and the experts of one
                          MoE block get one format (as vLLM and TensorRT-LLM fuse them); ranks stay per layer
  --bins <n>              budget units of the exact DP (default 4000)   --no-exact  skip it
  --out <recipe.json>     write the allocation as a recipe   --force  replace it
  --eval-data <folder>    ONNX models: also measure the task metric (CER, perplexity) of the
                          allocation and of the uniform rank (--act-format, --max-samples, --dict apply)
  --json                  print the whole result as JSON
${storeOptionsHelp}
                          With --shard, a task computes its layers' curves into the store and
                          allocates nothing (no budget needed); a last run with --store allocates.`;

const pct = (v: number | null) => (v === null ? '—' : `${(100 * v).toFixed(2)}%`);

function parseBudget(bits: string | undefined, bytes: string | undefined): Budget {
  if ((bits === undefined) === (bytes === undefined)) {
    throw new QuantLensError('bad-argument', 'give exactly one of --budget-bits <b> and --budget-bytes <n>');
  }
  return bits !== undefined
    ? { bitsPerWeight: numberOption(bits, '--budget-bits', BOUNDS.budgetBits)! }
    : { bytes: numberOption(bytes, '--budget-bytes', BOUNDS.budgetBytes)! };
}

/**
 * The objective: as given; else, with calibration, the sensitivity-weighted output error when the
 * model can be run (ONNX, calibration inputs at hand), the relative output error otherwise.
 */
function parseObjective(v: string | undefined, calibrated: boolean, canProbe: boolean): AllocationObjective {
  if (v === undefined) return calibrated ? (canProbe ? 'output-sensitivity' : 'output-relative') : 'weight-relative';
  if (!(ALLOCATION_OBJECTIVES as readonly string[]).includes(v)) {
    throw new QuantLensError('bad-argument', `--objective must be one of ${ALLOCATION_OBJECTIVES.join(', ')}`);
  }
  return v as AllocationObjective;
}

function summaryRow(label: string, s: AllocationSummary): string[] {
  return [
    label,
    s.bitsPerWeight.toFixed(4),
    (s.totalBits / 8).toFixed(0),
    s.objective.toExponential(4),
    pct(s.weightError),
    pct(s.meanOutputError),
  ];
}

export function allocationReport(r: AllocationResult): string {
  const u = r.bestUniform;
  const uniformBy = new Map(u?.summary.choices.map((c) => [c.name, c]) ?? []);
  const fused = r.best.choices.some((c) => c.fuse !== undefined);
  const rows = r.best.choices.map((c) => {
    const uc = uniformBy.get(c.name);
    return [
      c.name,
      ...(fused ? [c.fuse ?? '—'] : []),
      c.format,
      String(c.rank),
      uc ? String(uc.rank) : '—',
      pct(c.outputError),
      uc ? pct(uc.outputError) : '—',
      c.objective.toExponential(3),
      c.bits.toFixed(0),
    ];
  });
  const lines = [
    formatTable(
      [
        'layer',
        ...(fused ? ['fused group (one format)'] : []),
        'format',
        'rank',
        'uniform',
        'out err',
        'uniform out err',
        'objective term',
        'bits',
      ],
      rows,
    ),
    '',
    formatTable(
      ['', 'bits/weight', 'bytes', `objective (${r.objective})`, 'W err', 'mean out err'],
      [
        summaryRow(`allocation (${r.best.source})`, r.best),
        ...(u ? [summaryRow(`uniform ${u.format} rank ${u.rank}`, u.summary)] : []),
      ],
    ),
  ];
  const lb = optimumLowerBound(r);
  const gap = lb > 0 ? r.greedy.objective / lb - 1 : 0;
  lines.push(
    '',
    `budget ${(r.budgetBits / r.weights).toFixed(4)} bits/weight (${(r.budgetBits / 8).toFixed(0)} bytes); greedy objective ${r.greedy.objective.toExponential(4)}` +
      (r.exact ? `, exact DP (${r.exact.bins} bins) ${r.exact.summary.objective.toExponential(4)}` : '') +
      `; optimum ≥ ${lb.toExponential(4)} (greedy within ${(100 * gap).toFixed(2)}% of optimal)`,
  );
  if (u && u.summary.objective > 0) {
    lines.push(`allocation vs uniform: objective ×${(r.best.objective / u.summary.objective).toFixed(3)}`);
  }
  return lines.join('\n');
}

export async function allocateCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...analysisOptionSpec,
      'budget-bits': { type: 'string' },
      'budget-bytes': { type: 'string' },
      formats: { type: 'string' },
      objective: { type: 'string' },
      bins: { type: 'string' },
      'no-exact': { type: 'boolean' },
      fused: { type: 'boolean' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      'eval-data': { type: 'string' },
      'act-format': { type: 'string' },
      'max-samples': { type: 'string' },
      dict: { type: 'string' },
      threads: { type: 'string' },
      'sensitivity-data': { type: 'string' },
      'sensitivity-samples': { type: 'string' },
      'sensitivity-rank': { type: 'string' },
      'sensitivity-format': { type: 'string' },
      ...storeOptionSpec,
      force: { type: 'boolean' },
    },
    ['<checkpoint>'],
  );
  const path = requirePositional(positionals, 0, 'checkpoint path');
  // Every number and format first: a bad one costs nothing.
  const bins = intOption(values.bins, '--bins', BOUNDS.bins);
  const threads = intOption(values.threads, '--threads', BOUNDS.threads);
  const maxSamples = intOption(values['max-samples'], '--max-samples', BOUNDS.maxSamples);
  const sensitivityRank = intOption(values['sensitivity-rank'], '--sensitivity-rank', { ...BOUNDS.rank, min: 1 }) ?? 16;
  const sensitivitySamples = intOption(values['sensitivity-samples'], '--sensitivity-samples', BOUNDS.maxSamples) ?? 48;
  const sensitivityFormat = values['sensitivity-format']
    ? formatToString(parseFormat(values['sensitivity-format']))
    : undefined;
  const activation = activationSpec(values['act-format']);
  const store = await resolveStore(values.store, [path, values.calib, values.out], cliWarn);
  const shard = resolveShard(values.shard, store);
  // A shard only fills the store; the budget matters to the run that allocates afterwards.
  const budget = shard ? null : parseBudget(values['budget-bits'], values['budget-bytes']);
  const { settings } = resolveSettings({ ...values, rank: values['max-rank'] ?? values.rank ?? '64' });
  const formats = values.formats
    ? values.formats.split(',').map((f) => formatToString(parseFormat(f.trim())))
    : [settings.weightFormat];
  const ckpt = await openCheckpoint(resolve(path));
  // A statistics file that fails to open must not leave the checkpoint open.
  const stats = values.calib
    ? await StatsFile.open(resolve(values.calib)).catch(async (e: unknown) => {
        await ckpt.close();
        throw e;
      })
    : null;
  try {
    const recorded = stats?.info.metadata.calibration_data;
    const probeData = values['sensitivity-data'] ?? (recorded && existsSync(recorded) ? recorded : undefined);
    let recipeOut = null;
    if (values.out !== undefined) {
      const inputs: OutputInput[] = [...checkpointInputs(ckpt)];
      if (values.calib) inputs.push({ path: values.calib, what: 'the calibration file' });
      if (probeData) inputs.push({ path: probeData, what: 'the sensitivity data' });
      if (values['eval-data']) inputs.push({ path: values['eval-data'], what: 'the evaluation data' });
      if (values.dict) inputs.push({ path: values.dict, what: 'the dictionary' });
      recipeOut = await checkOutputFile(values.out, { inputs, force: !!values.force, option: '--out' });
    }
    const objective = parseObjective(values.objective, !!stats, ckpt.format === 'onnx' && probeData !== undefined);
    const selected = selectLayers(ckpt.linearLayers, values.layer, values.all);
    const costOptions = { spectra: false, maxRank: settings.maxRank, variants: formats.length };
    const layers = shard ? shardOf(selected, shard, (l) => estimatedCost(l.shape, costOptions)) : selected;
    if (shard) {
      process.stderr.write(
        `shard ${shard.index}/${shard.count}: curves of ${layers.length} of ${selected.length} layers into ${store!.dir}\n`,
      );
    }
    const bar = new ProgressBar(layers.length);
    const counts = { store: 0, computed: 0 };
    const inputs = await allocationInputs({
      checkpoint: ckpt,
      layers,
      stats,
      settings: {
        method: settings.method,
        factorFormat: settings.factorFormat,
        factorTiling: settings.factorTiling,
        maxRank: settings.maxRank,
      },
      formats,
      onLayer: (done, _total, name) => bar.update(done, name),
      ...(store
        ? {
            results: new LayerResults({ store: store.store, checkpoint: ckpt, stats }),
            warn: cliWarn,
            onAnalysis: (a) => a.stored && counts[a.stored.source]++,
          }
        : {}),
    });
    bar.done();
    if (store) {
      process.stderr.write(`store ${store.dir}: ${counts.store} curves from the store, ${counts.computed} computed\n`);
    }
    if (!budget) return 0;
    let sensitivities: LayerSensitivity[] | null = null;
    let layersIn = inputs;
    if (objective === 'output-sensitivity') {
      const data = probeData;
      if (!data) {
        throw new QuantLensError(
          'bad-argument',
          'the output-sensitivity objective needs --sensitivity-data <calibration inputs> (an ONNX model and its inputs)',
        );
      }
      process.stderr.write('measuring layer sensitivities…\n');
      const s = await layerSensitivities({
        model: resolve(path),
        layers: inputs,
        stats,
        settings: { method: settings.method, factorFormat: settings.factorFormat, factorTiling: settings.factorTiling },
        reference: {
          ...(sensitivityFormat ? { format: sensitivityFormat } : {}),
          rank: sensitivityRank,
        },
        data,
        maxSamples: sensitivitySamples,
        threads,
      });
      layersIn = s.layers;
      sensitivities = s.details;
    }
    const result = allocate(layersIn, budget, {
      objective,
      exact: !values['no-exact'],
      fused: !!values.fused,
      ...(bins !== undefined ? { bins } : {}),
    });
    const meta = { method: settings.method, factorFormat: settings.factorFormat, objective, budget };
    const recipe = allocationRecipe(result.best, meta);
    if (recipeOut) {
      await writeOutputText(recipeOut, JSON.stringify(recipe, null, 1) + '\n');
      process.stderr.write(`wrote ${recipeOut.path}\n`);
    }
    let evaluation: Awaited<ReturnType<typeof evaluateRecipes>> | null = null;
    if (values['eval-data']) {
      const recipes = [{ label: 'allocation', recipe }];
      if (result.bestUniform) {
        recipes.push({
          label: `uniform rank ${result.bestUniform.rank}`,
          recipe: allocationRecipe(result.bestUniform.summary, meta),
        });
      }
      evaluation = await evaluateRecipes(resolve(path), recipes, {
        data: values['eval-data'],
        stats,
        settings: { method: settings.method, factorFormat: settings.factorFormat, factorTiling: settings.factorTiling },
        activation,
        maxSamples,
        threads,
        ...(values.dict ? { dict: values.dict } : {}),
      });
    }
    if (values.json) {
      out.write(JSON.stringify({ result, recipe, sensitivities, evaluation }, null, 1) + '\n');
      return 0;
    }
    out.write(
      `${ckpt.format} checkpoint ${path} · ${METHODS[settings.method].label} · formats ${formats.join(', ')} · A/B ${settings.factorFormat} · ranks 0…${settings.maxRank}${values.calib ? ` · calibration ${values.calib}` : ''}\n`,
    );
    out.write(allocationReport(result) + '\n');
    if (sensitivities) {
      const top = [...sensitivities].sort((x, y) => y.sensitivity - x.sensitivity).slice(0, 5);
      out.write(
        `most sensitive layers (model deviation per unit of relative layer error): ${top.map((d) => `${d.name} ${d.sensitivity.toPrecision(3)}`).join(', ')}\n`,
      );
    }
    if (evaluation) {
      for (const note of evaluation.notes) process.stderr.write(`note: ${note}\n`);
      const task = evaluation.float.task;
      out.write(
        '\n' +
          formatTable(
            ['model', metricName(task)],
            [
              ['float', formatMetric(evaluation.float)],
              ...evaluation.results.map((e) => [e.label, formatMetric(e.result)]),
            ],
          ) +
          '\n',
      );
    }
    return 0;
  } finally {
    await stats?.close();
    await ckpt.close();
  }
}
