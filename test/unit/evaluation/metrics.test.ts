import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CerAccumulator,
  CosineAccumulator,
  ctcGreedyDecode,
  editDistance,
  PerplexityAccumulator,
  readCtcAlphabet,
} from '../../../src/engine/evaluation/metrics';
import { tokenWindows } from '../../../src/engine/calibration/textInputs';

test('CTC greedy decoding merges repeats, drops blanks, keeps repeats split by a blank', () => {
  const alphabet = { characters: ['a', 'b', 'l', ' '] };
  assert.equal(ctcGreedyDecode([0, 1, 1, 0, 3, 3, 0, 3, 4, 4, 0], alphabet), 'all ');
  assert.equal(ctcGreedyDecode([4, 4, 1, 0, 0, 2, 4], alphabet), ' ab ');
  assert.equal(ctcGreedyDecode(BigInt64Array.from([0n, 0n]), alphabet), '');
});

test('the dictionary gets a trailing space class when the model has one more class (use_space_char)', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'ql-dict-')), 'keys.txt');
  writeFileSync(path, 'a\nb\nc\n');
  assert.deepEqual(readCtcAlphabet(path, 5).characters, ['a', 'b', 'c', ' ']);
  assert.deepEqual(readCtcAlphabet(path, 4).characters, ['a', 'b', 'c']);
  assert.throws(() => readCtcAlphabet(path, 9), /predicts 9 classes/);
});

test('CER is total edit distance over total reference characters', () => {
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('日本語', '日本'), 1);
  const c = new CerAccumulator();
  c.add('hello world', 'hello world');
  c.add('helo', 'hello');
  assert.equal(c.value, 1 / 16);
  assert.equal(c.exact, 1);
});

test('perplexity is exp of the mean NLL; cosine is averaged per sample', () => {
  const p = new PerplexityAccumulator();
  for (const v of [1, 2, 3]) p.add(v);
  assert.ok(Math.abs(p.value - Math.exp(2)) < 1e-12);
  const c = new CosineAccumulator();
  c.addBatch(new Float32Array([1, 0, 0, 1]), new Float32Array([1, 0, 0, -1]), 2);
  assert.equal(c.value, 0);
});

test('token windows are non-overlapping with the remainder dropped', () => {
  const w = tokenWindows(
    Int32Array.from({ length: 10 }, (_, i) => i),
    4,
  );
  assert.deepEqual(
    w.map((x) => [...x]),
    [
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ],
  );
  assert.throws(() => tokenWindows(new Int32Array(4), 1), /sequence length/);
});
