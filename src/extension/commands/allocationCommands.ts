/**
 * The checkpoint overview's rank allocation, host side: what is possible for the checkpoint, the
 * worker job that computes every layer's (format, rank) curves (under the job tracker's cancellable
 * notification), and the two exports of the allocation shown: the JSON recipe and the quantized
 * checkpoint written with it. The allocation at a budget itself is pure and runs in the webview;
 * the exports run the same code (src/shared/allocationView.ts) on the curves kept in the session.
 */
import * as vscode from 'vscode';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { QuantLensError } from '../../engine/errors';
import { optimumLowerBound } from '../../engine/methods/allocation';
import { appliedRank } from '../../engine/methods/methods';
import { allocationFormatLabel, defaultGoal, recipeFor, usableGoal } from '../../shared/allocation';
import { sanitizeAllocationRequest, sanitizeAllocationGoal } from '../../shared/protocol/overview';
import {
  FACTOR_TILING,
  WEIGHT_FORMAT_CHOICES,
  describeSettings,
  factorFormatString,
  weightFormatString,
} from '../../shared/quantSettings';
import type { AllocationSupport, AllocationGoal } from '../../shared/protocol/overview';
import { checkOutputFile, writeOutputText } from '../../engine/writers/safeOutput';
import { defaultExportUri, exportQuantizedCheckpoint, sessionInputs, type Services } from './checkpointCommands';
import type { CheckpointSession } from '../services/checkpointSession';
import { isCancellation, toUserFacingError } from '../errors';

/** Far above any layer's bits per weight: the worker's own allocation is not used, only its curves. */
const UNBOUNDED_BUDGET = { bitsPerWeight: 1000 };

/** Why the sensitivity-weighted objective cannot be measured here, or null when it can. */
function sensitivityUnavailable(session: CheckpointSession, s: Services): string | null {
  if (session.summary?.format !== 'onnx')
    return 'it needs an ONNX model: each layer’s end-to-end effect is measured by running the model';
  if (!s.calibration.path) return 'it needs calibration statistics (Set Calibration…)';
  const data = s.calibration.metadata.calibration_data;
  if (!data) return 'the statistics file does not name its calibration inputs (calibration_data)';
  if (!existsSync(data)) return `the calibration inputs ${data} are not there any more`;
  return null;
}

/** Every weight format at the checkpoint's block size, INT ones also with fitted step sizes. */
function formatChoices(session: CheckpointSession): { value: string; label: string }[] {
  const out: { value: string; label: string }[] = [];
  const seen = new Set<string>();
  const add = (value: string) => {
    if (seen.has(value)) return;
    seen.add(value);
    out.push({ value, label: allocationFormatLabel(value) });
  };
  const { blockSize } = session.settings;
  // The checkpoint's own format first: it is the default candidate.
  add(weightFormatString(session.settings));
  for (const weightFormat of WEIGHT_FORMAT_CHOICES) {
    for (const fittedSteps of [false, true]) {
      try {
        const f = weightFormatString({ weightFormat, blockSize, fittedSteps });
        if (fittedSteps && !f.endsWith(':fitted')) continue;
        add(f);
      } catch {
        // this format takes no block of that size
      }
    }
  }
  return out;
}

export function allocationSupport(session: CheckpointSession, s: Services): AllocationSupport {
  const stats = session.statsForAny();
  return {
    calibrated: !!stats && (stats.has('act_rms') || stats.has('act_gram')),
    sensitivityUnavailable: sensitivityUnavailable(session, s),
    evaluable: session.summary?.format === 'onnx',
    settings: session.settings,
    formatChoices: formatChoices(session),
    checkpoint: session.path,
    calibration: s.calibration.path,
  };
}

/** Computes the curves of every layer the overview quantizes, for the request the webview sent. */
export async function computeAllocation(
  session: CheckpointSession,
  s: Services,
  raw: unknown,
  startView: AllocationGoal | null = null,
): Promise<void> {
  await session.ready;
  const request = sanitizeAllocationRequest(raw);
  if (!request) throw new QuantLensError('bad-argument', 'choose at least one candidate weight format');
  if (session.allocationProgress?.running) {
    void vscode.window.showInformationMessage(`Quant Lens: the allocation of ${session.name} is already running.`);
    return;
  }
  const settings = session.settings;
  const layers = session.quantizedLayers;
  if (layers.length === 0) throw new QuantLensError('bad-argument', `${session.name} has no layers to quantize`);
  const unavailable = request.sensitivity ? sensitivityUnavailable(session, s) : null;
  if (unavailable) throw new QuantLensError('bad-argument', `the sensitivity-weighted objective: ${unavailable}`);
  const calibration = s.calibration.path;
  const maxRank = appliedRank(settings.method, request.maxRank);
  s.engine.log.info(
    `allocation curves: ${layers.length} layers of ${session.path}, formats ${request.formats.join(', ')}, ranks 0…${maxRank} [${describeSettings(settings, false)}]${request.sensitivity ? ', with sensitivities' : ''}`,
  );
  const t0 = Date.now();
  const result = await s.jobs.batch(
    {
      title: `Allocation curves for ${session.name}`,
      kind: 'allocation',
      total: layers.length,
      unit: 'layers',
      onProgress: (p) => session.setAllocationProgress(p),
    },
    (ctx) =>
      s.engine.pool.call(
        'allocateRanks',
        {
          checkpoint: session.path,
          ...(calibration ? { calibration } : {}),
          layers: layers.map((l) => l.name),
          settings: {
            method: settings.method,
            factorFormat: factorFormatString(settings),
            factorTiling: FACTOR_TILING,
            maxRank,
          },
          formats: request.formats,
          budget: UNBOUNDED_BUDGET,
          // Always valid; the webview re-runs the allocation with the objective the user picks.
          objective: 'weight-relative',
          exact: false,
          ...(request.sensitivity ? { sensitivity: { data: s.calibration.metadata.calibration_data! } } : {}),
        },
        {
          signal: ctx.signal,
          onProgress: (p) => ctx.reached(p.done, p.layer),
        },
      ),
  );
  if (!result) return;
  const curves = {
    request: { ...request, maxRank },
    settings,
    calibration,
    layers: result.layers,
    sensitivities: result.sensitivities,
    timeMs: Date.now() - t0,
  };
  const previous = startView ?? session.allocation?.view;
  const view = previous ? usableGoal(previous, curves.layers) : defaultGoal(curves, settings.rank);
  session.setAllocation({ curves, view });
  s.engine.log.info(`allocation curves of ${session.name} in ${curves.timeMs} ms`);
}

function storedAllocation(session: CheckpointSession, raw: unknown) {
  const stored = session.allocation;
  if (!stored) throw new QuantLensError('bad-argument', 'compute the allocation curves first');
  const view = sanitizeAllocationGoal(raw) ?? stored.view;
  session.setAllocationGoal(view);
  return { curves: stored.curves, view: usableGoal(view, stored.curves.layers) };
}

/** "Export recipe…": the allocation shown, as JSON for `quant-lens export --recipe`. */
export async function exportRecipe(session: CheckpointSession, s: Services, raw: unknown): Promise<void> {
  const { curves, view } = storedAllocation(session, raw);
  const { recipe, result } = recipeFor(curves, view);
  const target = await vscode.window.showSaveDialog({
    title: 'Quant Lens: save the allocation recipe',
    defaultUri: defaultExportUri(session, '.recipe.json'),
    filters: { 'Recipe (JSON)': ['json'] },
    saveLabel: 'Save Recipe',
  });
  if (!target) return;
  await writeOutputText(
    await checkOutputFile(target.fsPath, {
      inputs: sessionInputs(session, curves.calibration),
      // The save dialog asked before choosing an existing file.
      force: true,
      option: 'the recipe',
    }),
    JSON.stringify(recipe, null, 1) + '\n',
  );
  const lb = optimumLowerBound(result);
  s.engine.log.info(
    `recipe ${target.fsPath}: ${Object.keys(recipe.layers).length} layers at ${result.best.bitsPerWeight.toFixed(4)} bits/weight (${result.best.source}, objective ${result.best.objective.toExponential(4)}, optimum ≥ ${lb.toExponential(4)})`,
  );
  const exportNow = 'Export Quantized Checkpoint';
  void vscode.window
    .showInformationMessage(
      `Quant Lens: saved ${basename(target.fsPath)}: ${Object.keys(recipe.layers).length} layers, ${result.best.bitsPerWeight.toFixed(3)} bits per weight. \`quant-lens export --recipe\` applies it.`,
      exportNow,
    )
    .then((choice) => (choice === exportNow ? exportWithRecipe(session, s, view) : undefined))
    .then(undefined, (e: unknown) => {
      if (isCancellation(e)) return;
      const message = toUserFacingError(e).message;
      s.engine.log.error(`export with recipe: ${message}`);
      void vscode.window.showErrorMessage(`Quant Lens: export with recipe: ${message}`);
    });
}

/** "Export quantized checkpoint with this recipe". */
export async function exportWithRecipe(session: CheckpointSession, s: Services, raw: unknown): Promise<void> {
  const { curves, view } = storedAllocation(session, raw);
  const { recipe } = recipeFor(curves, view);
  await exportQuantizedCheckpoint(session, s, { recipe, settings: curves.settings, calibration: curves.calibration });
}
