/**
 * `quant-lens fit-steps <checkpoint> --format int4:g128`: fitted step sizes per layer (a layer-local
 * LSQ-style fit inspired by SiLQ) against the min/max steps, alone and with the low-rank method on
 * top. The fitted format itself is a weight format (`int4:g128:fitted`) usable by every command.
 */
import { resolve } from 'node:path';
import { QuantLensError } from '../../engine/errors';
import { StatsFile } from '../../engine/calibration/statsFile';
import { METHODS } from '../../engine/methods/methods';
import { STEP_FIT_LABEL, compareStepFit, type StepFitComparison } from '../../engine/methods/stepFitComparison';
import { openCheckpoint } from '../../engine/readers/open';
import { parse, requirePositional } from '../args';
import {
  analysisOptionSpec,
  analysisOptionsHelp,
  cappedRankLayers,
  cappedRankNote,
  resolveSettings,
  selectLayers,
} from '../analysisOptions';
import { ProgressBar } from '../progress';
import { formatTable } from '../table';

export const fitStepsHelp = `quant-lens fit-steps <checkpoint> --format int<n>[:g<n>][:sym] [options]
  ${STEP_FIT_LABEL}: fits each group's step size to the layer's output error tr(ΔW R ΔWᵀ)
  (R = act_gram; act_rms gives its diagonal; without calibration the weight error), starting from
  the LSQ initialisation or the min/max step, whichever is better. Reports the error with min/max
  steps and with fitted steps, alone and with the low-rank method at --rank. The same fit is the
  weight format \`int4:g128:fitted\` in inspect, allocate, export and recipes.
${analysisOptionsHelp}
  --json                  one JSON object per layer`;

const pct = (v: number | null) => (v === null ? '—' : `${(100 * v).toFixed(2)}%`);

function change(before: number | null, after: number | null): string {
  if (before === null || after === null || before === 0) return '—';
  return `${(100 * (after / before - 1)).toFixed(1)}%`;
}

function rows(c: StepFitComparison): string[] {
  const useOutput = c.rtn.alone.outputError !== null;
  const e = (p: { weightError: number; outputError: number | null }) => (useOutput ? p.outputError : p.weightError);
  return [
    c.layer,
    c.objective,
    pct(e(c.rtn.alone)),
    pct(c.lsqInitRelative),
    pct(e(c.fitted.alone)),
    change(e(c.rtn.alone), e(c.fitted.alone)),
    pct(e(c.rtn.withCorrection)),
    pct(e(c.fitted.withCorrection)),
    change(e(c.rtn.withCorrection), e(c.fitted.withCorrection)),
    `${c.summary.groupsChanged}/${c.summary.groups}`,
    c.summary.medianStepRatio.toFixed(3),
  ];
}

export async function fitStepsCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parse(argv, { ...analysisOptionSpec, json: { type: 'boolean' } }, ['<checkpoint>']);
  const path = requirePositional(positionals, 0, 'checkpoint path');
  if (!values.format) throw new QuantLensError('bad-argument', '--format int<n>[:g<n>][:sym] is required');
  const { settings, rank } = resolveSettings(values);
  const ckpt = await openCheckpoint(resolve(path));
  // A statistics file that fails to open must not leave the checkpoint open.
  const stats = values.calib
    ? await StatsFile.open(resolve(values.calib)).catch(async (e: unknown) => {
        await ckpt.close();
        throw e;
      })
    : null;
  try {
    const layers = selectLayers(ckpt.linearLayers, values.layer, values.all);
    const note =
      values.rank !== undefined && METHODS[settings.method].corrects
        ? cappedRankNote(cappedRankLayers(layers, rank), rank)
        : null;
    if (note) process.stderr.write(`note: ${note}\n`);
    const bar = new ProgressBar(layers.length);
    const results: StepFitComparison[] = [];
    for (const layer of layers) {
      bar.update(results.length, layer.name);
      const w = await ckpt.readWeight(layer.name);
      const calibration = stats ? await stats.layerCalibration(layer.name, w.in) : undefined;
      const c = await compareStepFit(
        { name: layer.name, data: w.data, out: w.out, in: w.in, ...(calibration ? { calibration } : {}) },
        settings,
        rank,
      );
      results.push(c);
      if (values.json) out.write(JSON.stringify(c) + '\n');
    }
    bar.done();
    if (!values.json && results.length) {
      const first = results[0]!;
      const label = METHODS[settings.method].label;
      out.write(`${STEP_FIT_LABEL} · ${first.format} · then ${label} rank ${rank} (A/B ${settings.factorFormat})\n`);
      const what = first.rtn.alone.outputError !== null ? 'out err' : 'W err';
      out.write(
        formatTable(
          [
            'layer',
            'fitted to',
            `${what} min/max`,
            'LSQ init',
            'fitted',
            'Δ',
            `min/max + ${label}`,
            `fitted + ${label}`,
            'Δ',
            'groups moved',
            'step ratio',
          ],
          results.map(rows),
        ) + '\n',
      );
    }
    return 0;
  } finally {
    await stats?.close();
    await ckpt.close();
  }
}
