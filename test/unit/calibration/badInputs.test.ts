/**
 * Bad inputs end as QuantLensErrors that name the file and the problem (CLI exit code 2): a model
 * without linear layers, an empty image folder, a tokenizer from another model, a text file for
 * an image model, a language model without a tokenizer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calibrateOnnx } from '../../../src/engine/calibration/calibrateOnnx';
import { main } from '../../../src/cli/main';
import { isQuantLensError } from '../../../src/engine/errors';
import { convModel, lmModel, reluModel } from '../evaluation/smallGraphs';

const TOKENIZER = join(import.meta.dirname, '../../fixtures/models/tiny-llama/tokenizer.json');
const TEXT = join(import.meta.dirname, '../../fixtures/models/tiny-llama/calibration.txt');

async function rejects(p: Promise<unknown>, file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isQuantLensError(e), `a QuantLensError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.match(e.message, pattern);
    return true;
  });
}

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  const write = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = (chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  };
  try {
    return { code: await main(args), stderr };
  } finally {
    process.stderr.write = write;
  }
}

test('a model without linear layers: named, exit code 2', async () => {
  const model = reluModel();
  const images = mkdtempSync(join(tmpdir(), 'ql-imgs-'));
  await rejects(calibrateOnnx({ model, data: images }), model, /no linear layers/);
  const r = await cli(['calibrate', model, '--data', images, '--out', join(images, 's.safetensors')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /relu|model\.onnx.*no linear layers/);
});

test('an empty image folder, a missing folder and a text file for an image model', async () => {
  const { path } = convModel();
  const empty = mkdtempSync(join(tmpdir(), 'ql-empty-'));
  await rejects(calibrateOnnx({ model: path, data: empty }), empty, /no PNG images/);
  const missing = join(empty, 'nope');
  await rejects(calibrateOnnx({ model: path, data: missing }), missing, /no such folder/);
  const text = join(empty, 'lines.txt');
  writeFileSync(text, 'hello');
  await rejects(calibrateOnnx({ model: path, data: text }), text, /not a folder of images/);
  const r = await cli(['calibrate', path, '--data', empty, '--out', join(empty, 's.safetensors')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /holds no PNG images/);
});

test('a tokenizer whose ids do not fit the model is refused, naming the tokenizer', async () => {
  const small = lmModel(16);
  await rejects(
    calibrateOnnx({ model: small, data: TEXT, tokenizer: TOKENIZER }),
    TOKENIZER,
    /vocabulary of 16: this tokenizer belongs to another model/,
  );
  await assert.rejects(calibrateOnnx({ model: small, data: TEXT }), /needs --tokenizer/);
  const notJson = join(mkdtempSync(join(tmpdir(), 'ql-tok-')), 'tokenizer.json');
  writeFileSync(notJson, '{ nope');
  await rejects(calibrateOnnx({ model: small, data: TEXT, tokenizer: notJson }), notJson, /is not JSON/);
  // The matching vocabulary works: windows of 32 tokens, two per batch.
  const ok = await calibrateOnnx({ model: lmModel(512), data: TEXT, tokenizer: TOKENIZER, seqLen: 32, maxSamples: 6 });
  assert.equal(ok.samples, 6);
  assert.equal(ok.batches, 3);
  assert.equal(ok.stats.get('proj')!.tokens, 6 * 32);
});
