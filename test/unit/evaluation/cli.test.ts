/** `quant-lens calibrate` and `quant-lens eval` from the command line, on the tiny Llama fixture. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { calibrateCommand } from '../../../src/cli/commands/calibrate';
import { evalCommand } from '../../../src/cli/commands/eval';
import { StatsFile } from '../../../src/engine/calibration/statsFile';

const TINY = join(import.meta.dirname, '../../fixtures/models/tiny-llama');
const MODEL = join(TINY, 'model.onnx');
const TOKENIZER = join(TINY, 'tokenizer.json');

async function run(cmd: typeof evalCommand, args: string[]): Promise<{ code: number; out: string }> {
  const stream = new PassThrough();
  let out = '';
  stream.on('data', (c: Buffer) => (out += c.toString()));
  const code = await cmd(args, stream);
  return { code, out };
}

test('calibrate writes every linear layer’s statistics, keyed by weight name', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'ql-cli-')), 'stats.safetensors');
  const r = await run(calibrateCommand, [
    MODEL,
    '--data',
    join(TINY, 'calibration.txt'),
    '--tokenizer',
    TOKENIZER,
    '--max-samples',
    '4',
    '--gram',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(r.code, 0);
  const summary = JSON.parse(r.out) as { layers: number; samples: number; batches: number };
  assert.deepEqual([summary.layers, summary.samples, summary.batches], [29, 4, 2]);
  const f = await StatsFile.open(out);
  try {
    assert.equal(f.info.layers.size, 29);
    assert.ok([...f.info.layers.values()].every((k) => k.has('act_gram') && k.has('act_mean_abs') && k.has('act_rms')));
    assert.equal(f.info.metadata.batch_size, '2');
  } finally {
    await f.close();
  }
});

test('eval --sweep prints the float model and every configuration; --json has the same rows', async () => {
  const args = [
    MODEL,
    '--data',
    join(TINY, 'eval.txt'),
    '--tokenizer',
    TOKENIZER,
    '--max-samples',
    '8',
    '--calib-data',
    join(TINY, 'calibration.txt'),
    '--calib-samples',
    '8',
    '--sweep',
    '--methods',
    'rtn,lqer,l2qer,qera-exact',
    '--ranks',
    '8,full',
    '--formats',
    'mxint3',
  ];
  const table = await run(evalCommand, args);
  assert.equal(table.code, 0);
  assert.match(table.out, /perplexity/);
  for (const row of ['float', 'RTN', 'LQER', 'L²QER', 'QERA-exact'])
    assert.match(table.out, new RegExp(`^${row} `, 'm'));
  const json = await run(evalCommand, [...args, '--json']);
  const doc = JSON.parse(json.out) as {
    task: string;
    float: { value: number };
    rows: { method: string; rank: number | string; result: { value: number } }[];
  };
  assert.equal(doc.task, 'perplexity');
  assert.equal(doc.rows.length, 1 + 3 * 2);
  const rtn = doc.rows.find((r) => r.method === 'rtn')!.result.value;
  const full = doc.rows.find((r) => r.method === 'lqer' && r.rank === 'full')!.result.value;
  // MXINT3 hurts; the full-rank correction (with MXINT8 factors) brings the model back near float.
  assert.ok(rtn > doc.float.value, `RTN ${rtn} vs float ${doc.float.value}`);
  assert.ok(Math.abs(full / doc.float.value - 1) < 0.02, `full rank ${full} vs float ${doc.float.value}`);
});

test('eval refuses a calibration-needing method without statistics (exit through QuantLensError)', async () => {
  await assert.rejects(
    run(evalCommand, [MODEL, '--data', join(TINY, 'eval.txt'), '--tokenizer', TOKENIZER, '--method', 'l2qer']),
    /needs calibration: pass --stats/,
  );
});
