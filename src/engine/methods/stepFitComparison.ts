/**
 * Before/after of fitted step sizes on one layer: the INT format with min/max steps (RTN) against
 * the same format with steps fitted to the layer's output error (stepFitting.ts), each alone
 * (rank 0) and with the low-rank method (e.g. L²QER) on top at rank k. Labelled in the UI as
 * "layer-local step fitting, inspired by SiLQ" (SiLQ itself is end-to-end QAT).
 */
import { QuantLensError } from '../errors';
import { analyzeLayer, type AnalysisSettings, type LayerInput } from './analyzeLayer';
import { metricsAtRank } from './metricsAtRank';
import { formatToString, parseFormat } from '../quantizers';
import { STEP_FIT_LABEL, type StepFitComparison, type StepFitPoint } from './stepFitComparisonTypes';

export { STEP_FIT_LABEL, type StepFitComparison, type StepFitPoint };

function point(a: Awaited<ReturnType<typeof analyzeLayer>>, k: number): StepFitPoint {
  const m = metricsAtRank(a, k);
  return { weightError: m.weightError, outputError: m.outputError };
}

export async function compareStepFit(
  input: LayerInput,
  settings: Omit<AnalysisSettings, 'maxRank' | 'spectra'>,
  rank: number,
  signal?: AbortSignal,
): Promise<StepFitComparison> {
  const f = parseFormat(settings.weightFormat);
  if (f.kind !== 'int') {
    throw new QuantLensError(
      'bad-argument',
      `fitted step sizes apply to the INT formats (int2…int8[:g<n>][:sym]), not ${settings.weightFormat}`,
    );
  }
  const base = formatToString({ ...f, fitted: false });
  const fittedFormat = formatToString({ ...f, fitted: true });
  const common = { ...settings, maxRank: rank, spectra: false };
  const rtn = await analyzeLayer(input, { ...common, weightFormat: base }, signal ? { signal } : {});
  const fitted = await analyzeLayer(input, { ...common, weightFormat: fittedFormat }, signal ? { signal } : {});
  const summary = fitted.stepFit!;
  const k = fitted.maxRank;
  const ref =
    summary.objective === 'weight'
      ? rtn.norms.weightSq
      : summary.objective === 'output'
        ? rtn.norms.outputSq
        : rtn.outputErrorKind === 'diagonal-estimate'
          ? rtn.norms.outputSq
          : null;
  return {
    layer: input.name,
    format: base,
    fittedFormat,
    method: settings.method,
    rank: k,
    objective: summary.objective,
    summary,
    rtn: { alone: point(rtn, 0), withCorrection: point(rtn, k) },
    fitted: { alone: point(fitted, 0), withCorrection: point(fitted, k) },
    lsqInitRelative: ref ? Math.sqrt(summary.lsqInit / ref) : null,
    label: STEP_FIT_LABEL,
  };
}
