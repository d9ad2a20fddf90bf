/**
 * `quant-lens inspect <checkpoint>`: per-layer quantization error, both spectra and the effect of
 * the low-rank correction, as a table, JSON Lines or a self-contained HTML report.
 */
import { resolve } from 'node:path';
import { errorMessage, isQuantLensError } from '../../engine/errors';
import { METHODS } from '../../engine/methods/methods';
import { metricsAtRank } from '../../engine/methods/metricsAtRank';
import { htmlReport } from '../../engine/report/htmlReport';
import type { LayerAnalysis } from '../../engine/methods/analyzeLayer';
import {
  checkOutputFile,
  checkpointInputs,
  writeOutputText,
  type CheckedOutput,
} from '../../engine/writers/safeOutput';
import type { GgmlStorage } from '../../engine/quantizers/ggml/ggmlQuant';
import { parse, requirePositional } from '../args';
import { BOUNDS, intOption } from '../numbers';
import {
  analysisOptionSpec,
  analysisOptionsHelp,
  cappedRankLayers,
  cappedRankNote,
  resolveSettings,
  selectLayers,
} from '../analysisOptions';
import { createEngine } from '../engine';
import { analysesInFlight } from '../../worker/pipelining';
import { ProgressBar } from '../progress';
import { cliWarn, resolveShard, resolveStore, storeOptionSpec, storeOptionsHelp } from '../storeOptions';
import { estimatedCost, shardOf } from '../../engine/store/shard';
import type { StoredLayerAnalysis } from '../../engine/store/storedAnalysis';
import { formatTable } from '../table';

export const inspectHelp = `quant-lens inspect <checkpoint> [options]
  Quantizes each linear layer, decomposes the error and reports weight / output error, SQNR,
  bits per weight and both singular-value spectra.
${analysisOptionsHelp}
  --max-rank <R>          also compute the error curves up to rank R (default: --rank)
  --no-spectra            skip the full spectra (much faster on big layers)
  --json                  one JSON object per layer (JSON Lines) on stdout
  --html <file>           write a self-contained HTML report with the spectra plots   --force  replace it
  --jobs <n>              analyse n layers in parallel worker threads (default 1)
${storeOptionsHelp}`;

const pct = (v: number | null) => (v === null ? '—' : `${(100 * v).toFixed(2)}%`);

function jsonRecord(a: LayerAnalysis, rank: number, timeMs: number): Record<string, unknown> {
  const m = metricsAtRank(a, rank);
  const rel = (errSq: Float64Array | null, ref: number | null) =>
    errSq && ref ? Array.from(errSq, (e) => Math.sqrt(e / ref)) : null;
  return {
    name: a.name,
    shape: a.shape,
    format: a.weightFormat,
    abFormat: a.factorFormat,
    abTiling: a.factorTiling,
    bitsPerWeight: m.bitsPerWeight,
    averageBitsPerStoredElement: m.averageBitsPerStoredElement,
    bytes: m.bytes,
    method: a.method,
    rank: m.rank,
    sigmaPlain: Array.from(a.sigmaPlain),
    sigmaScaled: Array.from(a.sigmaScaled),
    weightError: m.weightError,
    outputError: m.outputError,
    outputErrorKind: a.outputErrorKind,
    weightSqnrDb: Number.isFinite(m.weightSqnrDb) ? m.weightSqnrDb : null,
    outputSqnrDb: m.outputSqnrDb !== null && Number.isFinite(m.outputSqnrDb) ? m.outputSqnrDb : null,
    recovered: m.recovered,
    weightErrorByRank: rel(a.curves.weightErrSq, a.norms.weightSq),
    outputErrorByRank: rel(a.curves.outputErrSq, a.norms.outputSq),
    nonFinite: a.nonFinite,
    ...(a.ggml ? { ggml: a.ggml } : {}),
    ...(a.spectrumRoutes ? { spectrumRoutes: a.spectrumRoutes } : {}),
    timeMs: Math.round(timeMs),
    // Where the analysis's time went (quantize, factors, curves, spectra…), for profiling a slow layer.
    stageMs: Object.fromEntries(Object.entries(a.timings).map(([k, v]) => [k, Math.round(v)])),
  };
}

/** The table's note for llama.cpp formats: the stored type when it is a fall-back, and imatrix use. */
function ggmlNote(g: GgmlStorage): string {
  const parts = [];
  if (g.fallback) parts.push(`stored as ${g.stored} (${g.requested.toUpperCase()} fall-back)`);
  if (g.imatrix) parts.push('imatrix');
  return parts.join(', ');
}

export async function inspectCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...analysisOptionSpec,
      'no-spectra': { type: 'boolean' },
      json: { type: 'boolean' },
      html: { type: 'string' },
      jobs: { type: 'string' },
      ...storeOptionSpec,
      force: { type: 'boolean' },
    },
    ['<checkpoint>'],
  );
  const path = requirePositional(positionals, 0, 'checkpoint path');
  const { settings, rank } = resolveSettings(values);
  if (values['no-spectra']) settings.spectra = false;
  const jobs = intOption(values.jobs, '--jobs', BOUNDS.jobs) ?? 1;
  const store = await resolveStore(values.store, [path, values.calib, values.html], cliWarn);
  const shard = resolveShard(values.shard, store);
  const engine = createEngine(jobs);
  try {
    const summary = await engine.call('openCheckpoint', { path: resolve(path) });
    const calibration = values.calib ? resolve(values.calib) : undefined;
    if (calibration) await engine.call('calibrationInfo', { path: calibration });
    let report: CheckedOutput | null = null;
    if (values.html !== undefined) {
      report = await checkOutputFile(values.html, {
        inputs: [
          ...checkpointInputs(summary),
          ...(values.calib ? [{ path: values.calib, what: 'the calibration file' }] : []),
        ],
        force: !!values.force,
        option: '--html',
      });
    }
    const selected = selectLayers(summary.linearLayers, values.layer, values.all);
    if (values['max-rank'] !== undefined) cappedRankLayers(selected, settings.maxRank, '--max-rank');
    const capped =
      values.rank !== undefined && METHODS[settings.method].corrects ? cappedRankLayers(selected, rank) : [];
    const note = cappedRankNote(capped, rank);
    if (note) process.stderr.write(`note: ${note}\n`);
    const costOptions = { spectra: settings.spectra !== false, maxRank: settings.maxRank };
    const layers = shard ? shardOf(selected, shard, (l) => estimatedCost(l.shape, costOptions)) : selected;
    if (shard) {
      process.stderr.write(
        `shard ${shard.index}/${shard.count}: ${layers.length} of ${selected.length} layers into ${store!.dir}\n`,
      );
    }
    const counts = { store: 0, computed: 0 };
    const bar = new ProgressBar(layers.length);
    const results: (LayerAnalysis | null)[] = new Array(layers.length).fill(null);
    const failures: string[] = [];
    // JSON lines go out in the layers' order, whichever of the analyses in flight ends first.
    const lines: (string | null | undefined)[] = new Array(layers.length);
    let written = 0;
    const settle = (i: number, line: string | null) => {
      lines[i] = line;
      for (; written < layers.length && lines[written] !== undefined; written++) {
        const l = lines[written];
        if (l) out.write(l);
        lines[written] = null;
      }
    };
    let done = 0;
    let next = 0;
    const worker = async () => {
      while (next < layers.length) {
        const i = next++;
        const layer = layers[i]!;
        const t0 = performance.now();
        try {
          const a: StoredLayerAnalysis = await engine.call(
            'analyzeLayer',
            {
              checkpoint: summary.path,
              layer: layer.name,
              settings,
              ...(calibration ? { calibration } : {}),
              ...(store ? { store: store.dir } : {}),
            },
            { onProgress: (p) => bar.update(done, `${layer.name} · ${p.step}`, p.fraction) },
          );
          results[i] = a;
          if (a.stored) {
            counts[a.stored.source]++;
            for (const w of a.stored.warnings) cliWarn(w);
          }
          // With a store, the time the analysis itself took (when it was computed, for stored layers),
          // so that a run answered from the store prints what the run that computed it printed.
          const timeMs = a.stored ? a.stored.computeMs : performance.now() - t0;
          settle(i, values.json ? JSON.stringify(jsonRecord(a, rank, timeMs)) + '\n' : null);
        } catch (e) {
          settle(i, null);
          if (isQuantLensError(e) && e.code === 'cancelled') throw e;
          const message = errorMessage(e);
          // Named once: many of the engine's messages name the layer themselves.
          failures.push(message.includes(layer.name) ? message : `${layer.name}: ${message}`);
          if (!isQuantLensError(e)) throw e;
        }
        done++;
        bar.update(done, layer.name);
      }
    };
    const inFlight = analysesInFlight(jobs, layers);
    await Promise.all(Array.from({ length: Math.min(inFlight, layers.length) }, worker));
    bar.done();
    if (store) {
      process.stderr.write(`store ${store.dir}: ${counts.store} layers from the store, ${counts.computed} computed\n`);
    }
    const ok = results.filter((a): a is LayerAnalysis => a !== null);
    if (!values.json) {
      out.write(
        `${summary.format} checkpoint ${path} · ${METHODS[settings.method].label} · W ${settings.weightFormat} · A/B ${settings.factorFormat} · rank ${rank}${calibration ? ` · calibration ${values.calib}` : ''}\n`,
      );
      const rows = ok.map((a) => {
        const m = metricsAtRank(a, rank);
        return [
          a.name,
          `${a.shape[0]}×${a.shape[1]}`,
          m.bitsPerWeight.toFixed(3),
          pct(metricsAtRank(a, 0).weightError),
          pct(m.weightError) + (m.rank < rank && METHODS[settings.method].corrects ? ` (k=${m.rank})` : ''),
          pct(m.outputError) + (a.outputErrorKind === 'diagonal-estimate' ? '*' : ''),
          Number.isFinite(m.weightSqnrDb) ? m.weightSqnrDb.toFixed(1) : '∞',
          pct(m.recovered),
          [a.nonFinite ? `${a.nonFinite} non-finite` : '', a.ggml ? ggmlNote(a.ggml) : ''].filter(Boolean).join('; '),
        ];
      });
      out.write(
        formatTable(
          ['layer', '[out×in]', 'bits/w', 'W err (k=0)', `W err (k=${rank})`, 'out err', 'SQNR dB', 'recovered', ''],
          rows,
        ) + '\n',
      );
      if (ok.some((a) => a.outputErrorKind === 'diagonal-estimate')) {
        out.write('* output error estimated from per-channel RMS only (no act_gram in the calibration file)\n');
      }
    }
    if (report) {
      const html = htmlReport({
        title: `Quant Lens report: ${path}`,
        checkpoint: summary.path,
        architecture: summary.architecture,
        rank,
        calibration: calibration ?? null,
        layers: ok,
        generatedBy: `quant-lens inspect, ${new Date().toISOString()}`,
      });
      await writeOutputText(report, html);
      process.stderr.write(`wrote ${report.path}\n`);
    }
    for (const f of failures) process.stderr.write(`quant-lens: ${f}\n`);
    return failures.length ? 2 : 0;
  } finally {
    await engine.dispose();
  }
}
