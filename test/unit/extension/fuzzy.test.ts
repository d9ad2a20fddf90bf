import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzyFilter, fuzzyScore } from '../../../src/extension/commands/fuzzy';

const names = [
  'layers.0.self_attn.q_proj',
  'layers.0.mlp.down_proj',
  'layers.1.mlp.down_proj',
  'layers.1.self_attn.o_proj',
  'layers.10.mlp.down_proj',
  'lm_head',
];

test('letters in order, not necessarily together', () => {
  assert.deepEqual(
    fuzzyFilter(names, 'l1dp', (x) => x),
    ['layers.1.mlp.down_proj', 'layers.10.mlp.down_proj'],
  );
  assert.equal(fuzzyScore('xyz', 'layers.0.mlp.down_proj'), null);
  assert.equal(fuzzyScore('pq', 'q_proj'), null, 'order matters');
});

test('every space-separated term must match', () => {
  assert.deepEqual(
    fuzzyFilter(names, 'down 0', (x) => x),
    ['layers.0.mlp.down_proj', 'layers.10.mlp.down_proj'],
  );
});

test('word starts and runs rank higher; an empty query keeps everything in order', () => {
  assert.equal(fuzzyFilter(names, 'head', (x) => x)[0], 'lm_head');
  assert.equal(fuzzyFilter(names, 'oproj', (x) => x)[0], 'layers.1.self_attn.o_proj');
  assert.deepEqual(
    fuzzyFilter(names, '  ', (x) => x),
    names,
  );
});
