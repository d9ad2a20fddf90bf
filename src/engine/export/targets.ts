/**
 * The export targets, one row each (the module of each target says what it writes and which
 * public schema it follows), and `runExport`, which every caller (CLI, worker) goes through: plan,
 * refuse what the target cannot express, write.
 */
import { QuantLensError } from '../errors';
import { planExport, type ExportPlan, type ExportSelection, type PlanOptions } from './plan';
import { METHODS } from '../methods/methods';
import { correctionNote, refusalMessage, type ExportOutcome, type ExportRun, type ExportTarget } from './target';
import { quantLensTarget } from './targets/quantLens';
import { ggufTarget } from './targets/gguf';
import { tensorTypesTarget } from './targets/tensorTypes';
import { hfTarget } from './targets/hf';
import { llmCompressorTarget } from './targets/llmCompressor';
import { modelOptTarget } from './targets/modelOpt';
import { checkOutputFile, checkOutputFolder, checkpointInputs } from '../writers/safeOutput';

export const EXPORT_TARGETS = {
  'quant-lens': quantLensTarget,
  gguf: ggufTarget,
  'tensor-types': tensorTypesTarget,
  hf: hfTarget,
  'llm-compressor': llmCompressorTarget,
  modelopt: modelOptTarget,
} as const satisfies Record<string, ExportTarget>;

export type ExportTargetId = keyof typeof EXPORT_TARGETS;

export const EXPORT_TARGET_IDS = Object.keys(EXPORT_TARGETS) as ExportTargetId[];

export function isExportTargetId(s: string): s is ExportTargetId {
  return Object.hasOwn(EXPORT_TARGETS, s);
}

export function exportTarget(id: string): ExportTarget {
  if (!isExportTargetId(id)) {
    throw new QuantLensError('bad-argument', `--to must be one of ${EXPORT_TARGET_IDS.join(', ')}; got "${id}"`);
  }
  return EXPORT_TARGETS[id];
}

/** The targets that can write a selection, each with what it cannot express (empty: all of it). */
export function targetSupport(
  selection: ExportSelection,
): { id: ExportTargetId; target: ExportTarget; refusals: ReturnType<ExportTarget['refusals']> }[] {
  return EXPORT_TARGET_IDS.map((id) => ({
    id,
    target: EXPORT_TARGETS[id],
    refusals: EXPORT_TARGETS[id].refusals(selection),
  }));
}

/**
 * Every planned layer has the statistic its method needs (else the export would stop part-way, at
 * the first layer without): refused up front, naming the statistics file and the layers.
 */
function missingStatistics(plan: ExportPlan): void {
  const need = METHODS[plan.method].needs;
  if (!need) return;
  if (!plan.stats) {
    throw new QuantLensError(
      'needs-calibration',
      `${METHODS[plan.method].label} needs calibration statistics (${need}): give --calib <stats.safetensors>`,
    );
  }
  const stats = plan.stats;
  const missing = plan.layers.filter((l) => !stats.has(l.name, need)).map((l) => l.name);
  if (missing.length) {
    throw new QuantLensError(
      'needs-calibration',
      `has no ${need} for ${missing.length} of the ${plan.layers.length} layers to export (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}), which ${METHODS[plan.method].label} needs; calibrate them, or export with --method lqer or rtn`,
      stats.info.path,
    );
  }
}

export async function runExport(targetId: string, planOptions: PlanOptions, run: ExportRun): Promise<ExportOutcome> {
  const target = exportTarget(targetId);
  if (run.dtype && !target.dtypes.includes(run.dtype)) {
    throw new QuantLensError(
      'bad-argument',
      target.dtypes.length
        ? `--dtype ${run.dtype.toLowerCase()} does not apply to the ${target.label} export (${target.dtypes.map((d) => d.toLowerCase()).join(', ')})`
        : `--dtype does not apply to the ${target.label} export, which writes no tensors`,
    );
  }
  const plan = planExport(planOptions);
  if (plan.layers.length === 0) throw new QuantLensError('bad-argument', 'no layer to export', plan.checkpoint.path);
  const refusals = target.refusals(plan);
  if (refusals.length)
    throw new QuantLensError('bad-argument', refusalMessage(target, refusals), planOptions.recipeFile);
  missingStatistics(plan);
  // Before any layer is computed: an output that would destroy an input costs nothing.
  const rules = {
    inputs: [...checkpointInputs(plan.checkpoint), ...(run.inputs ?? [])],
    force: !!run.force,
    ...(run.outOption ? { option: run.outOption } : {}),
  };
  const output =
    target.output === 'folder' ? await checkOutputFolder(run.out, rules) : await checkOutputFile(run.out, rules);
  const outcome = await target.write(plan, { ...run, output });
  const note = correctionNote(target, plan);
  if (note) outcome.notes.push(note);
  return outcome;
}
