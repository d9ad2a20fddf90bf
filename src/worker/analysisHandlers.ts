/**
 * The worker's analyses other than one layer's error analysis: rank allocation, QLLM reassembly,
 * fitted step sizes, checkpoint comparison. Merged into the worker's handler table by createHandlers.
 */
import { QuantLensError, throwIfCancelled } from '../engine/errors';
import { allocate, allocationRecipe, type AllocationObjective } from '../engine/methods/allocation';
import { allocationInputs } from '../engine/methods/allocationInputs';
import { layerSensitivities, type LayerSensitivity } from '../engine/methods/layerSensitivity';
import { compareCheckpoints } from '../engine/methods/compareCheckpoints';
import { analyzeReassembly, reassemblySites } from '../engine/methods/qllm';
import type { ReassemblyConsumer } from '../engine/methods/reassemblyTypes';
import { compareStepFit } from '../engine/methods/stepFitComparison';
import type { Checkpoint } from '../engine/readers/checkpoint';
import type { StatsFile } from '../engine/calibration/statsFile';
import type { HandlerTable } from './handlerTypes';

type AnalysisMethod = 'allocateRanks' | 'reassemblySites' | 'reassembleSite' | 'fitStepSizes' | 'compareCheckpoints';

export type AnalysisHandlers = HandlerTable<AnalysisMethod>;

interface Caches {
  get(path: string): Promise<Checkpoint>;
}
interface Stats {
  get(path: string): Promise<StatsFile>;
}

function linearLayer(ckpt: Checkpoint, name: string) {
  const l = ckpt.linearLayers.find((x) => x.name === name);
  if (!l) throw new QuantLensError('bad-argument', `"${name}" is not a linear layer of this checkpoint`, ckpt.path);
  return l;
}

export function analysisHandlers(cache: Caches, statsCache: Stats): AnalysisHandlers {
  return {
    async allocateRanks(p, ctx) {
      const ckpt = await cache.get(p.checkpoint);
      const stats = p.calibration ? await statsCache.get(p.calibration) : null;
      const layers = p.layers?.length
        ? p.layers.map((n) => linearLayer(ckpt, n))
        : ckpt.linearLayers.filter((l) => l.quantizedByDefault);
      const inputs = await allocationInputs({
        checkpoint: ckpt,
        layers,
        stats,
        settings: p.settings,
        formats: p.formats,
        signal: ctx.signal,
        onLayer: (done, total, layer) => ctx.progress({ done, total, layer }),
      });
      const objective: AllocationObjective =
        p.objective ?? (stats ? (p.sensitivity ? 'output-sensitivity' : 'output-relative') : 'weight-relative');
      let layersIn = inputs;
      let sensitivities: LayerSensitivity[] | null = null;
      if (p.sensitivity) {
        const s = await layerSensitivities({
          model: p.checkpoint,
          layers: inputs,
          stats,
          settings: {
            method: p.settings.method,
            factorFormat: p.settings.factorFormat,
            factorTiling: p.settings.factorTiling,
          },
          reference: {
            ...(p.sensitivity.format ? { format: p.sensitivity.format } : {}),
            rank: p.sensitivity.rank ?? 16,
          },
          data: p.sensitivity.data,
          ...(p.sensitivity.tokenizer ? { tokenizer: p.sensitivity.tokenizer } : {}),
          maxSamples: p.sensitivity.maxSamples ?? 48,
          signal: ctx.signal,
        });
        layersIn = s.layers;
        sensitivities = s.details;
      }
      const result = allocate(layersIn, p.budget, {
        objective,
        ...(p.fused ? { fused: true } : {}),
        ...(p.exact !== undefined ? { exact: p.exact } : {}),
        ...(p.bins ? { bins: p.bins } : {}),
      });
      const recipe = allocationRecipe(result.best, {
        method: p.settings.method,
        factorFormat: p.settings.factorFormat,
        objective,
        budget: p.budget,
      });
      return { layers: layersIn, result, recipe, sensitivities };
    },
    async reassemblySites({ checkpoint }) {
      return reassemblySites((await cache.get(checkpoint)).linearLayers);
    },
    async reassembleSite(p, ctx) {
      const ckpt = await cache.get(p.checkpoint);
      const stats = await statsCache.get(p.calibration);
      if (p.layers.length === 0) throw new QuantLensError('bad-argument', 'a reassembly site needs at least one layer');
      const consumers: ReassemblyConsumer[] = [];
      let channels = 0;
      for (const name of p.layers) {
        const w = await ckpt.readWeight(linearLayer(ckpt, name).name, ctx.signal);
        if (channels && w.in !== channels) {
          throw new QuantLensError(
            'bad-argument',
            `the layers of a site must share their input width (${name}: ${w.in} ≠ ${channels})`,
          );
        }
        channels = w.in;
        consumers.push({ name, weight: w.data, out: w.out });
      }
      // The consumers read the same activation: the first one that has samples provides them.
      const withSamples = p.layers.find((n) => stats.has(n, 'act_samples'));
      if (!withSamples) {
        throw new QuantLensError(
          'needs-calibration',
          `has no act_samples for ${p.layers.join(', ')}: reassembly needs activation rows, not only statistics`,
          stats.info.path,
        );
      }
      const samples = await stats.read(withSamples, 'act_samples', channels);
      const meanAbs = stats.has(withSamples, 'act_mean_abs')
        ? await stats.read(withSamples, 'act_mean_abs', channels)
        : undefined;
      throwIfCancelled(ctx.signal);
      return analyzeReassembly(
        {
          site: p.site ?? p.layers.join(' + '),
          consumers,
          channels,
          samples,
          rows: samples.length / channels,
          ...(meanAbs ? { meanAbs } : {}),
        },
        { ...p.options, signal: ctx.signal },
      );
    },
    async fitStepSizes(p, ctx) {
      const ckpt = await cache.get(p.checkpoint);
      const w = await ckpt.readWeight(linearLayer(ckpt, p.layer).name, ctx.signal);
      const calibration = p.calibration
        ? await (await statsCache.get(p.calibration)).layerCalibration(p.layer, w.in)
        : undefined;
      return compareStepFit(
        { name: p.layer, data: w.data, out: w.out, in: w.in, ...(calibration ? { calibration } : {}) },
        p.settings,
        p.rank,
        ctx.signal,
      );
    },
    async compareCheckpoints(p, ctx) {
      const [a, b] = await Promise.all([cache.get(p.a), cache.get(p.b)]);
      return compareCheckpoints(a, b, {
        ...(p.tolerance !== undefined ? { tolerance: p.tolerance } : {}),
        ...(p.spectra !== undefined ? { spectra: p.spectra } : {}),
        ...(p.layers ? { layers: p.layers } : {}),
        signal: ctx.signal,
        onLayer: (done, total, layer) => ctx.progress({ done, total, layer }),
      });
    },
  };
}
