/**
 * Language models end to end: the tiny Llama fixture (train_tiny_llama.py) tokenized in JS exactly
 * as the Python tokenizers library did, and its float perplexity equal to the one measured with
 * PyTorch/onnxruntime at training time; a Hugging Face dynamo export with external data
 * (test/fixtures/readers/onnx-llama) calibrated and rewritten through the temp-folder path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { accumulateStats } from '../../../src/engine/calibration/calibrateOnnx';
import { openOnnxLinearModel, selectSites } from '../../../src/engine/calibration/linearSites';
import { describeModelIO, lmFeeds } from '../../../src/engine/calibration/modelInputs';
import { tokenizeFile } from '../../../src/engine/calibration/textInputs';
import { Evaluator } from '../../../src/engine/evaluation/evaluate';
import { openEditedSession } from '../../../src/engine/evaluation/session';
import { quantizedGraphEdits } from '../../../src/engine/evaluation/quantizedGraph';
import { quantizeModelAtRanks } from '../../../src/engine/evaluation/sweep';
import { FULL_RANK } from '../../../src/engine/evaluation/sweepTable';
import { rng } from './smallGraphs';

const TINY = join(import.meta.dirname, '../../fixtures/models/tiny-llama');
const HF = join(import.meta.dirname, '../../fixtures/readers/onnx-llama/model.onnx');

interface Reference {
  seq_len: number;
  eval_tokens: number;
  eval_ids_sha256: string;
  eval_ids_head: number[];
  windows: number;
  ppl_onnxruntime: number;
  ppl_unigram: number;
}

test('tiny Llama: JS tokenization equals the Python tokenizer; float perplexity equals the reference', async () => {
  const ref = JSON.parse(readFileSync(join(TINY, 'reference.json'), 'utf8')) as Reference;
  const t = tokenizeFile(join(TINY, 'eval.txt'), join(TINY, 'tokenizer.json'));
  assert.equal(t.ids.length, ref.eval_tokens);
  assert.deepEqual([...t.ids.subarray(0, 16)], ref.eval_ids_head);
  const hash = createHash('sha256')
    .update(new Uint8Array(t.ids.buffer, t.ids.byteOffset, t.ids.byteLength))
    .digest('hex');
  assert.equal(hash, ref.eval_ids_sha256);

  const m = await openOnnxLinearModel(join(TINY, 'model.onnx'));
  const ev = Evaluator.open(m, {
    data: join(TINY, 'eval.txt'),
    tokenizer: join(TINY, 'tokenizer.json'),
    seqLen: ref.seq_len,
    batchSize: 8,
  });
  try {
    assert.equal(ev.task, 'perplexity');
    const float = await ev.evaluate(null);
    assert.equal(float.samples, ref.windows);
    assert.ok(Math.abs(float.value / ref.ppl_onnxruntime - 1) < 1e-4, `ppl ${float.value} vs ${ref.ppl_onnxruntime}`);
    assert.ok(float.value < ref.ppl_unigram / 2, 'the model is far better than a unigram model');
    // 28 decoder linears are quantized by default; lm_head stays float.
    const sites = selectSites(m.sites, {}, m.model.path);
    assert.equal(sites.length, 28);
    const q = await quantizeModelAtRanks(
      m,
      sites,
      null,
      { method: 'rtn', weightFormat: 'mxint2', factorFormat: 'mxint8', factorTiling: 'last-dim' },
      [0],
    );
    const rtn = await ev.evaluate(
      quantizedGraphEdits(
        q.map((l) => ({ site: l.site, layer: l.layers[0]! })),
        m.opset,
      ),
    );
    assert.ok(rtn.value > float.value * 1.05, `MXINT2 RTN ${rtn.value} vs float ${float.value}`);
  } finally {
    await ev.dispose();
    await m.close();
  }
});

test(
  'HF dynamo export with external data: calibrates, and rank = full reproduces the float logits',
  { skip: existsSync(HF) ? false : 'no onnx-llama fixture' },
  async () => {
    const m = await openOnnxLinearModel(HF);
    try {
      const io = describeModelIO(m.model);
      assert.equal(io.kind, 'lm');
      if (io.kind !== 'lm') return;
      const r = rng(5);
      // The fixture was exported for one sequence of 8 tokens (static shapes).
      const windows = [0, 1].map(() => Int32Array.from({ length: 8 }, () => Math.floor(r() * 64)));
      const batches = windows.map((w) => ({ feeds: lmFeeds(io, [w]), size: 1 }));
      const stats = await accumulateStats(m, m.sites, batches, { gram: true });
      assert.equal(stats.size, m.sites.length);
      for (const s of stats.values()) assert.equal(s.tokens, 16);
      const sites = selectSites(m.sites, {}, HF);
      const q = await quantizeModelAtRanks(
        m,
        sites,
        stats,
        { method: 'qera-exact', weightFormat: 'mxint4', factorFormat: 'fp32', factorTiling: 'last-dim' },
        [FULL_RANK],
      );
      const run = async (edits: Parameters<typeof openEditedSession>[1]) => {
        const s = await openEditedSession(m.model, edits);
        try {
          return (await s.session.run(batches[0]!.feeds, [io.logits]))[io.logits]!.data as Float32Array;
        } finally {
          await s.dispose();
        }
      };
      const float = await run({});
      const full = await run(
        quantizedGraphEdits(
          q.map((l) => ({ site: l.site, layer: l.layers[0]! })),
          m.opset,
          { split: true },
        ),
      );
      let d = 0;
      let scale = 0;
      for (let i = 0; i < float.length; i++) {
        d = Math.max(d, Math.abs(full[i]! - float[i]!));
        scale = Math.max(scale, Math.abs(float[i]!));
      }
      assert.ok(d < 1e-3 * scale, `max |Δ| ${d} (scale ${scale})`);
    } finally {
      await m.close();
    }
  },
);
