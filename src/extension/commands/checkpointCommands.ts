/**
 * The checkpoint-wide actions: analyse every layer, compare the methods at one bit budget, export
 * the quantized checkpoint and the HTML report. Each runs under the job tracker's cancellable
 * notification and reports into the session so its overview shows the same progress.
 */
import * as vscode from 'vscode';
import { basename, dirname, join } from 'node:path';
import { QuantLensError } from '../../engine/errors';
import { METHOD_NAMES, METHODS, appliedRank } from '../../engine/methods/methods';
import { metricsAtRank } from '../../engine/methods/metricsAtRank';
import { htmlReport } from '../../engine/report/htmlReport';
import { checkOutputFile, checkpointInputs, writeOutputText, type OutputInput } from '../../engine/writers/safeOutput';
import type { LayerAnalysis } from '../../engine/methods/layerAnalysis';
import type { Recipe } from '../../engine/methods/recipe';
import type { LinearLayer } from '../../shared/checkpointSummary';
import { finiteOrNull } from '../../shared/formatting';
import {
  FACTOR_TILING,
  describeSettings,
  factorFormatString,
  methodChoices,
  weightFormatString,
  type QuantSettings,
} from '../../shared/quantSettings';
import type { JobProgress, MethodComparison, MethodComparisonRow } from '../../shared/protocol/common';
import type { ExportTargetInfo } from '../../shared/workerProtocol';
import type { CalibrationService } from '../services/calibrationService';
import type { CheckpointSession } from '../services/checkpointSession';
import { workerCount } from '../configuration';
import { analysesInFlight } from '../../worker/pipelining';
import type { EngineService } from '../services/engineService';
import { isCancellation, toUserFacingError } from '../errors';
import type { JobTracker } from '../services/jobTracker';

export interface Services {
  engine: EngineService;
  jobs: JobTracker;
  calibration: CalibrationService;
}

/** Runs `work` over `items` with `parallel` loops; the first non-cancellation error of `work` is not caught here. */
async function forEachParallel<T>(
  items: readonly T[],
  parallel: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const loop = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, items.length)) }, loop));
}

/** Analyses every layer "analyse all" covers that the session cache does not already hold. */
export async function analyzeAll(session: CheckpointSession, s: Services): Promise<void> {
  await session.ready;
  if (session.progress?.running) {
    void vscode.window.showInformationMessage(`Quant Lens: ${session.name} is already being worked on.`);
    return;
  }
  const layers = session.quantizedLayers.filter((l) => !s.engine.peek(session.request(l)));
  if (layers.length === 0) {
    void vscode.window.showInformationMessage(
      `Quant Lens: all ${session.quantizedLayers.length} layers of ${session.name} are analysed at these settings.`,
    );
    return;
  }
  s.engine.log.info(`analyse all: ${layers.length} layers of ${session.path} [${describeSettings(session.settings)}]`);
  await s.jobs.batch(
    {
      title: `Analysing ${session.name}`,
      kind: 'analysis',
      total: layers.length,
      unit: 'layers',
      onProgress: (p) => session.setProgress(p),
    },
    async (ctx) => {
      const workers = workerCount();
      const inFlight = analysesInFlight(workers, layers);
      await forEachParallel(layers, inFlight, async (layer) => {
        if (ctx.signal.aborted) return;
        ctx.working(layer.name);
        try {
          await s.engine.analyze(session.request(layer), { signal: ctx.signal, shareWorker: inFlight > workers });
        } catch (e) {
          if (isCancellation(e) || ctx.signal.aborted) return;
          const error = toUserFacingError(e);
          s.engine.log.warn(`${layer.name}: ${error.message}`);
          session.recordFailure(layer.name, error);
        }
        ctx.tick();
      });
      if (ctx.signal.aborted) throw new QuantLensError('cancelled', 'cancelled');
    },
  );
}

interface ComparisonInput {
  session: CheckpointSession;
  layers: readonly LinearLayer[];
  settings: QuantSettings;
  scope: string;
  /** Per-layer statistics decide which methods run; checkpoint-wide, any layer having them is enough. */
  stats: ReturnType<CalibrationService['statsFor']>;
}

/** All methods on the same layers, formats and rank: the same bit budget, so only the error differs. */
export async function compareMethods(
  input: ComparisonInput,
  s: Services,
  onProgress: (p: JobProgress) => void,
): Promise<MethodComparison | undefined> {
  const { session, layers, settings } = input;
  const choices = methodChoices(input.stats);
  const runnable = choices.filter((c) => !c.disabledReason).map((c) => c.name);
  const total = runnable.length * layers.length;
  const perMethod = new Map<string, { analyses: LayerAnalysis[]; failures: number }>();
  for (const m of runnable) perMethod.set(m, { analyses: [], failures: 0 });
  const finished = await s.jobs.batch(
    {
      title: `Comparing methods on ${input.scope}`,
      kind: 'method-comparison',
      total,
      unit: 'analyses',
      onProgress: (p) => {
        onProgress(p);
        if (layers.length > 1) session.setProgress(p);
      },
    },
    async (ctx) => {
      const jobs = runnable.flatMap((method) => layers.map((layer) => ({ method, layer })));
      await forEachParallel(jobs, workerCount(), async ({ method, layer }) => {
        if (ctx.signal.aborted) return;
        ctx.working(`${METHODS[method].label} · ${layer.name}`);
        const methodSettings = { ...settings, method };
        // A full analysis already in the cache answers too; otherwise skip the spectra (much faster).
        const full = s.engine.peek(session.request(layer, methodSettings));
        try {
          const a =
            full ??
            (await s.engine.analyze(session.request(layer, methodSettings, false), { signal: ctx.signal })).analysis;
          perMethod.get(method)!.analyses.push(a);
        } catch (e) {
          if (isCancellation(e) || ctx.signal.aborted) return;
          s.engine.log.warn(`compare ${method} on ${layer.name}: ${toUserFacingError(e).message}`);
          perMethod.get(method)!.failures++;
        }
        ctx.tick();
      });
      if (ctx.signal.aborted) throw new QuantLensError('cancelled', 'cancelled');
      return true;
    },
  );
  if (!finished) return undefined;
  const rows: MethodComparisonRow[] = METHOD_NAMES.map((method) => {
    const choice = choices.find((c) => c.name === method)!;
    const r = perMethod.get(method);
    if (!r) return emptyRow(method, choice.disabledReason ?? 'not run', 0);
    return comparisonRow(method, r.analyses, settings.rank, r.failures);
  });
  const corrected = rows.find((r) => METHODS[r.method].corrects && r.bitsPerWeight !== null);
  return { scope: input.scope, settings, bitsPerWeight: corrected?.bitsPerWeight ?? 0, rows };
}

function emptyRow(method: MethodComparisonRow['method'], skipped: string, failures: number): MethodComparisonRow {
  return {
    method,
    label: METHODS[method].label,
    skipped,
    weightError: null,
    outputError: null,
    weightSqnrDb: null,
    recovered: null,
    bitsPerWeight: null,
    failures,
  };
}

/** Σ bits / Σ weights over the layers (layers of different sizes weigh in by size). */
function bits(analyses: LayerAnalysis[], metrics: ReturnType<typeof metricsAtRank>[]): number | null {
  let total = 0;
  let weights = 0;
  analyses.forEach((a, i) => {
    total += 8 * metrics[i]!.bytes;
    weights += a.shape[0] * a.shape[1];
  });
  return weights ? total / weights : null;
}

function comparisonRow(
  method: MethodComparisonRow['method'],
  analyses: LayerAnalysis[],
  rank: number,
  failures: number,
): MethodComparisonRow {
  if (analyses.length === 0) return emptyRow(method, 'failed on every layer', failures);
  const metrics = analyses.map((a) => metricsAtRank(a, Math.min(rank, a.maxRank)));
  const mean = (f: (m: (typeof metrics)[number]) => number | null) => {
    const v = metrics.map(f).filter((x): x is number => x !== null && Number.isFinite(x));
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  return {
    method,
    label: METHODS[method].label,
    skipped: null,
    weightError: finiteOrNull(mean((m) => m.weightError)),
    outputError: finiteOrNull(mean((m) => m.outputError)),
    weightSqnrDb: finiteOrNull(mean((m) => m.weightSqnrDb)),
    recovered: finiteOrNull(mean((m) => m.recovered)),
    bitsPerWeight: bits(analyses, metrics),
    failures,
  };
}

/** Checkpoint-wide comparison at the session's settings. */
export async function compareCheckpointMethods(session: CheckpointSession, s: Services): Promise<void> {
  await session.ready;
  const layers = session.quantizedLayers;
  const comparison = await compareMethods(
    {
      session,
      layers,
      settings: session.settings,
      scope: `${layers.length} layers of ${session.name}`,
      stats: session.statsForAny(),
    },
    s,
    () => undefined,
  );
  if (comparison) session.setMethodComparison(comparison);
}

/** A file beside the checkpoint named after it: "<stem><suffix>", or `name` when given. */
export function defaultExportUri(session: CheckpointSession, suffix: string, name?: string): vscode.Uri {
  const stem = basename(session.path).replace(/(\.safetensors\.index\.json|\.[^.]+)$/, '');
  const folder = session.summary?.files.length ? dirname(session.summary.files[0]!.path) : dirname(session.path);
  return vscode.Uri.file(join(folder, name ?? `${stem}${suffix}`));
}

/** A recipe (per-layer format and rank) to export with, and the settings its curves were computed at. */
export interface ExportRecipe {
  recipe: Recipe;
  settings: QuantSettings;
  calibration: string | null;
}

interface TargetItem extends vscode.QuickPickItem {
  target: ExportTargetInfo;
}

/**
 * Export Quantized Checkpoint…: the targets that can express the chosen formats (the others are
 * named in the picker's placeholder with the first reason), then the file or folder, then the
 * export under a cancellable progress notification. `targetId` skips the picker.
 */
export async function exportQuantizedCheckpoint(
  session: CheckpointSession,
  s: Services,
  withRecipe?: ExportRecipe,
  targetId?: string,
): Promise<void> {
  await session.ready;
  const settings = withRecipe?.settings ?? session.settings;
  const layers = withRecipe
    ? session.quantizedLayers.filter((l) => withRecipe.recipe.layers[l.name])
    : session.quantizedLayers;
  const calibration = withRecipe ? withRecipe.calibration : s.calibration.path;
  const base = {
    checkpoint: session.path,
    layers: layers.map((l) => l.name),
    settings: {
      method: settings.method,
      weightFormat: weightFormatString(settings),
      factorFormat: factorFormatString(settings),
      factorTiling: FACTOR_TILING,
    },
    rank: appliedRank(settings.method, settings.rank),
    ...(withRecipe ? { recipe: withRecipe.recipe } : {}),
    ...(calibration ? { calibration } : {}),
  };
  const targets = await s.engine.pool.call('exportTargets', base);
  const usable = targets.filter((t) => t.refusals.length === 0);
  const refused = targets.filter((t) => t.refusals.length > 0);
  let target: ExportTargetInfo | undefined;
  if (targetId) {
    target = targets.find((t) => t.id === targetId);
    const why = target?.refusals[0];
    if (!target || why) {
      throw new QuantLensError(
        'bad-argument',
        target
          ? `the ${target.label} export cannot express ${why!.layer ? `layer "${why!.layer}": ` : ''}${why!.value} — ${why!.reason}`
          : `no export target "${targetId}"`,
      );
    }
  } else {
    if (!usable.length) {
      throw new QuantLensError(
        'bad-argument',
        `no export target can express these formats (${refused.map((t) => `${t.label}: ${t.refusals[0]!.reason}`).join('; ')})`,
      );
    }
    const what = withRecipe ? 'the allocated recipe' : describeSettings(settings);
    const picked = await vscode.window.showQuickPick<TargetItem>(
      usable.map((t) => ({
        label: t.label,
        description: t.output === 'folder' ? 'folder' : `.${t.extension ?? ''}`,
        detail: `${t.description}${!t.carriesCorrection && base.rank > 0 ? ' (the low-rank correction is not carried)' : ''}`,
        target: t,
      })),
      {
        title: `Quant Lens: export ${session.name} (${what}) for…`,
        placeHolder: refused.length
          ? `Not offered for these formats: ${refused.map((t) => `${t.label} (${t.refusals[0]!.value})`).join(', ')}`
          : 'Choose what to write',
        matchOnDetail: true,
      },
    );
    target = picked?.target;
  }
  if (!target) return;
  const dest = await vscode.window.showSaveDialog({
    title:
      target.output === 'folder'
        ? `Quant Lens: the folder to write the ${target.label} into`
        : `Quant Lens: export the ${target.label}`,
    defaultUri: defaultExportUri(session, '', target.defaultName),
    ...(target.extension ? { filters: { [target.label]: [target.extension] } } : {}),
    saveLabel: 'Export',
  });
  if (!dest) return;
  // The save dialog asks before replacing a file; a folder that has files gets asked about here.
  if (target.output === 'folder') {
    const existing = await vscode.workspace.fs.readDirectory(dest).then(
      (entries) => entries.length,
      () => 0,
    );
    if (existing > 0) {
      const replace = 'Write Into It';
      const answer = await vscode.window.showWarningMessage(
        `${basename(dest.fsPath)} already holds ${existing} item${existing === 1 ? '' : 's'}. Write the export into it, replacing files of the same names?`,
        { modal: true },
        replace,
      );
      if (answer !== replace) return;
    }
  }
  const chosen = target;
  const result = await s.jobs.batch(
    {
      title: `Exporting ${session.name} (${chosen.label})${withRecipe ? ' with the allocated recipe' : ''}`,
      kind: 'export',
      total: layers.length,
      unit: 'layers',
      onProgress: (p) => session.setProgress(p),
    },
    (ctx) =>
      s.engine.pool.call(
        'exportCheckpoint',
        { ...base, target: chosen.id, dtype: null, out: dest.fsPath, force: true },
        {
          signal: ctx.signal,
          onProgress: (p) => ctx.reached(p.done, p.layer),
        },
      ),
  );
  if (!result) return;
  s.engine.log.info(
    `exported ${chosen.label} to ${result.path}: ${Object.keys(result.layers).length} layers, ${result.files.length} file(s)`,
  );
  for (const note of result.notes) s.engine.log.info(`  note: ${note}`);
  const reveal = 'Reveal in Explorer';
  void vscode.window
    .showInformationMessage(
      `Quant Lens: wrote ${basename(result.path)} (${chosen.label}, ${Object.keys(result.layers).length} layers)${result.notes.length ? ` — ${result.notes[0]}` : ''}.`,
      reveal,
    )
    .then((choice) =>
      choice === reveal ? vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(result.path)) : undefined,
    )
    .then(undefined, (e: unknown) => s.engine.log.warn(`reveal: ${String(e)}`));
}

/** What a file written for a session must never replace: the checkpoint's files and the statistics. */
export function sessionInputs(session: CheckpointSession, calibration: string | null | undefined): OutputInput[] {
  const inputs = checkpointInputs({ path: session.path, files: session.summary?.files ?? [] });
  if (calibration) inputs.push({ path: calibration, what: 'the calibration file' });
  return inputs;
}

export async function exportReport(session: CheckpointSession, s: Services): Promise<void> {
  await session.ready;
  const missing = session.quantizedLayers.filter((l) => !session.analysis(l.name));
  if (missing.length) {
    const analyse = `Analyse ${missing.length} Layers`;
    const partial = 'Report Analysed Layers Only';
    const choice = await vscode.window.showInformationMessage(
      `Quant Lens: ${missing.length} of ${session.quantizedLayers.length} layers are not analysed at the current settings.`,
      { modal: true },
      analyse,
      ...(session.analysedLayers().length ? [partial] : []),
    );
    if (!choice) return;
    if (choice === analyse) {
      await analyzeAll(session, s);
      if (session.quantizedLayers.some((l) => !session.analysis(l.name))) return;
    }
  }
  const layers = session.analysedLayers();
  if (layers.length === 0) return;
  const target = await vscode.window.showSaveDialog({
    title: 'Quant Lens: save the analysis report',
    defaultUri: defaultExportUri(session, '.quant-lens-report.html'),
    filters: { HTML: ['html'] },
    saveLabel: 'Save Report',
  });
  if (!target) return;
  const report = await checkOutputFile(target.fsPath, {
    inputs: sessionInputs(session, s.calibration.path),
    // The save dialog asked before choosing an existing file.
    force: true,
    option: 'the report',
  });
  const html = htmlReport({
    title: `Quant Lens report: ${session.name} · ${describeSettings(session.settings)}`,
    checkpoint: session.path,
    architecture: session.summary?.architecture ?? null,
    rank: session.settings.rank,
    calibration: s.calibration.path,
    layers,
    generatedBy: `Quant Lens for VS Code, ${new Date().toISOString()}`,
  });
  await writeOutputText(report, html);
  s.engine.log.info(`report: ${target.fsPath} (${layers.length} layers)`);
  const open = 'Open in Browser';
  void vscode.window
    .showInformationMessage(`Quant Lens: report saved to ${basename(target.fsPath)}.`, open)
    .then((choice) => (choice === open ? vscode.env.openExternal(target) : undefined))
    .then(undefined, (e: unknown) => s.engine.log.warn(`open report: ${String(e)}`));
}
