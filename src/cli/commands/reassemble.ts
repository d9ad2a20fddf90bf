/**
 * `quant-lens reassemble <checkpoint> --calib <stats with act_samples>`: QLLM's adaptive channel
 * reassembly per site (a linear layer's input, or the shared input of q/k/v and gate/up), with the
 * θ search, beside L²QER on the same layers.
 */
import { resolve } from 'node:path';
import { QuantLensError } from '../../engine/errors';
import type { LayerStatistics } from '../../engine/calibration/accumulator';
import { StatsFile, writeStatsFile } from '../../engine/calibration/statsFile';
import { sampleActivations } from '../../engine/calibration/activationSamples';
import { analyzeReassembly, reassemblySites } from '../../engine/methods/qllm';
import type { ReassemblyResult } from '../../engine/methods/reassemblyTypes';
import { openCheckpoint } from '../../engine/readers/open';
import { checkOutputFile, checkpointInputs, type CheckedOutput } from '../../engine/writers/safeOutput';
import { parse, requirePositional } from '../args';
import { selectLayers } from '../analysisOptions';
import { ProgressBar } from '../progress';
import { formatTable } from '../table';
import { BOUNDS, intOption, numberOption } from '../numbers';
import { parseFormat } from '../../engine/quantizers';

export const reassembleHelp = `quant-lens reassemble <checkpoint> (--calib <stats> | --calib-data <folder|text>) [options]
  QLLM adaptive channel reassembly, as an analysis: per site (the input of a linear layer, or the
  shared input of q/k/v and gate/up), the outlier channels, channel disassembly at θ and bipartite
  assembly back to the original width, with QLLM's search for the θ that minimises the site's
  output MSE under per-token activation and per-channel weight quantization (INT, asymmetric);
  beside L²QER on the same layers with the same quantizers. QLLM's gradient-based low-rank
  tuning is out of scope.
  --calib <stats>         statistics with N.act_samples (activation rows)
  --calib-data <path>     ONNX models: sample the activations now (images folder or text file)
  --samples <n>           rows to sample per layer with --calib-data (default 2048)
  --save-samples <file>   write the sampled statistics (act_mean_abs, act_rms, act_samples)   --force  replace it
  --tokenizer <file>      with --calib-data for language models   --batch-size <n>  --max-samples <n>
  --layer <name|/re/>     layers whose sites to analyse (repeatable; default the layers quantized by default)   --all
  --w-bits <n>            weight bits, per output channel (default 4)
  --a-bits <n>            activation bits, per token (default 4)
  --channel-ratio <r>     extra channels allowed, share of C (default 0.2, QLLM's scripts)
  --rank <k>              rank of the L²QER reference (default 32)   --ab-format <fmt>  (default mxint8)
  --json                  one JSON object per site (JSON Lines)`;

const sci = (v: number) => v.toExponential(2);

function row(r: ReassemblyResult): string[] {
  const rel = (v: number) => sci(r.outputPower > 0 ? v / r.outputPower : v);
  return [
    r.site,
    String(r.channels),
    r.threshold === null ? '—' : r.threshold.toPrecision(4),
    String(r.extraChannels),
    `${r.before.range.maxAbs.toPrecision(3)} → ${r.after.range.maxAbs.toPrecision(3)}`,
    `${r.before.range.meanTokenRange.toPrecision(3)} → ${r.after.range.meanTokenRange.toPrecision(3)}`,
    rel(r.before.quantizedMse),
    rel(r.after.quantizedMse),
    rel(r.l2qer.quantizedMse),
    rel(r.reassembledL2qer.quantizedMse),
  ];
}

function jsonRecord(r: ReassemblyResult): Record<string, unknown> {
  return {
    ...r,
    channelMax: Array.from(r.channelMax),
    after: { ...r.after, channelMax: Array.from(r.after.channelMax) },
  };
}

export async function reassembleCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      calib: { type: 'string' },
      'calib-data': { type: 'string' },
      samples: { type: 'string' },
      'save-samples': { type: 'string' },
      tokenizer: { type: 'string' },
      'batch-size': { type: 'string' },
      'max-samples': { type: 'string' },
      threads: { type: 'string' },
      layer: { type: 'string', multiple: true },
      all: { type: 'boolean' },
      'w-bits': { type: 'string' },
      'a-bits': { type: 'string' },
      'channel-ratio': { type: 'string' },
      rank: { type: 'string' },
      'ab-format': { type: 'string' },
      json: { type: 'boolean' },
      force: { type: 'boolean' },
    },
    ['<checkpoint>'],
  );
  const path = requirePositional(positionals, 0, 'checkpoint path');
  if (values['save-samples'] !== undefined && !values['calib-data']) {
    throw new QuantLensError(
      'bad-argument',
      '--save-samples needs --calib-data (it saves the activations sampled now)',
    );
  }
  if (!values.calib === !values['calib-data']) {
    throw new QuantLensError('bad-argument', 'give one of --calib <stats with act_samples> and --calib-data <path>');
  }
  const options = {
    weightBits: intOption(values['w-bits'], '--w-bits', BOUNDS.bits) ?? 4,
    actBits: intOption(values['a-bits'], '--a-bits', BOUNDS.bits) ?? 4,
    channelRatio: numberOption(values['channel-ratio'], '--channel-ratio', BOUNDS.channelRatio) ?? 0.2,
    rank: intOption(values.rank, '--rank', { ...BOUNDS.rank, min: 1 }) ?? 32,
    factorFormat: values['ab-format'] ?? 'mxint8',
  };
  parseFormat(options.factorFormat); // checked now, before any work
  if (!values['calib-data']) {
    const only = (['samples', 'tokenizer', 'batch-size', 'max-samples', 'threads'] as const).find(
      (k) => values[k] !== undefined,
    );
    if (only)
      throw new QuantLensError('bad-argument', `--${only} applies with --calib-data (sampling activations now)`);
  }
  const sampling = {
    rows: intOption(values.samples, '--samples', BOUNDS.samples) ?? 2048,
    batchSize: intOption(values['batch-size'], '--batch-size', BOUNDS.batchSize),
    maxSamples: intOption(values['max-samples'], '--max-samples', BOUNDS.maxSamples),
    threads: intOption(values.threads, '--threads', BOUNDS.threads),
  };
  const ckpt = await openCheckpoint(resolve(path));
  let stats: StatsFile | null = null;
  try {
    let saveTo: CheckedOutput | null = null;
    if (values['save-samples'] !== undefined) {
      saveTo = await checkOutputFile(values['save-samples'], {
        inputs: [
          ...checkpointInputs(ckpt),
          { path: values['calib-data']!, what: 'the calibration data' },
          ...(values.tokenizer ? [{ path: values.tokenizer, what: 'the tokenizer' }] : []),
        ],
        force: !!values.force,
        option: '--save-samples',
      });
    }
    const layers = selectLayers(ckpt.linearLayers, values.layer, values.all);
    let sampled: Map<string, LayerStatistics> | null = null;
    if (values['calib-data']) {
      process.stderr.write('sampling activations…\n');
      sampled = await sampleActivations({
        model: resolve(path),
        data: values['calib-data'],
        ...sampling,
        ...(values.tokenizer ? { tokenizer: values.tokenizer } : {}),
        layers: { all: true },
      });
      if (saveTo) {
        await writeStatsFile(saveTo, sampled, {
          source_model: path,
          producer: 'quant-lens reassemble',
        });
        process.stderr.write(`wrote ${values['save-samples']}\n`);
      }
    } else stats = await StatsFile.open(resolve(values.calib!));
    const sites = reassemblySites(layers);
    const bar = new ProgressBar(sites.length);
    const results: ReassemblyResult[] = [];
    const skipped: string[] = [];
    for (const s of sites) {
      bar.update(results.length + skipped.length, s.site);
      const consumers = [];
      for (const name of s.layers) {
        const w = await ckpt.readWeight(name);
        consumers.push({ name, weight: w.data, out: w.out });
      }
      let samples: Float32Array | undefined;
      let meanAbs: Float32Array | undefined;
      if (sampled) {
        const st = s.layers.map((n) => sampled.get(n)).find((x) => x?.samples);
        samples = st?.samples?.data;
        meanAbs = st?.meanAbs;
      } else {
        const name = s.layers.find((n) => stats!.has(n, 'act_samples'));
        if (name) {
          samples = await stats!.read(name, 'act_samples', s.channels);
          if (stats!.has(name, 'act_mean_abs')) meanAbs = await stats!.read(name, 'act_mean_abs', s.channels);
        }
      }
      if (!samples || samples.length === 0) {
        skipped.push(s.site);
        continue;
      }
      const r = await analyzeReassembly(
        {
          site: s.site,
          consumers,
          channels: s.channels,
          samples,
          rows: samples.length / s.channels,
          ...(meanAbs ? { meanAbs } : {}),
        },
        options,
      );
      results.push(r);
      if (values.json) out.write(JSON.stringify(jsonRecord(r)) + '\n');
    }
    bar.done();
    if (!values.json) {
      out.write(
        `QLLM channel reassembly (as analysis) · W${options.weightBits} per output channel, A${options.actBits} per token, INT asymmetric · channel ratio ${options.channelRatio} · L²QER rank ${options.rank} (A/B ${options.factorFormat})\n`,
      );
      out.write(
        formatTable(
          [
            'site',
            'C',
            'θ',
            '+ch',
            'max|x|',
            'token range',
            'rel MSE',
            'reassembled',
            `L²QER k=${options.rank}`,
            'reassembled + L²QER',
          ],
          results.map(row),
        ) + '\n',
      );
      out.write(
        "rel MSE: mean (y − ŷ)² / mean y² of the site's output under both quantizers. QLLM's gradient-based low-rank tuning is out of scope.\n",
      );
      const notes = new Set(results.flatMap((r) => r.notes.slice(1)));
      for (const n of notes) out.write(`note: ${n}\n`);
    }
    if (skipped.length) {
      process.stderr.write(
        `quant-lens: no act_samples for ${skipped.length} site(s): ${skipped.slice(0, 5).join(', ')}${skipped.length > 5 ? ', …' : ''}\n`,
      );
    }
    if (results.length === 0) {
      throw new QuantLensError(
        'needs-calibration',
        'no site has activation samples (act_samples); reassembly needs activation rows',
      );
    }
    return 0;
  } finally {
    await stats?.close();
    await ckpt.close();
  }
}
