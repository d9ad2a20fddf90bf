import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gram, Workspace, type Mat } from '../../../src/engine/linalg';
import { gramOperand } from '../../../src/engine/linalg/gram';
import { mulberry32 } from '../../../src/engine/random';

function matrix(rows: number, cols: number, seed: number): Mat<Float32Array> {
  const r = mulberry32(seed);
  return { data: Float32Array.from({ length: rows * cols }, () => r() - 0.5), rows, cols };
}

test('a scaled Gram operand taken right after the plain Gram reuses its transpose, bit for bit, and never a stale one', async () => {
  const m = matrix(700, 300, 1);
  const scale = Float64Array.from({ length: 300 }, (_, i) => 0.5 + (i % 7) * 0.37);
  const fresh = Float32Array.from(
    gramOperand(m, 'columns', { precision: 'float32', columnScale: scale, workspace: new Workspace(), copy: true }),
  );

  const ws = new Workspace();
  await gram(m, { precision: 'float32', side: 'columns', workspace: ws, out: new Float32Array(300 * 300) });
  // M changed behind the workspace's back: a reused transpose shows the values it was made from.
  const original = Float32Array.from(m.data);
  m.data.fill(0);
  const reused = gramOperand(m, 'columns', { precision: 'float32', columnScale: scale, workspace: ws, copy: true });
  assert.deepEqual(Float32Array.from(reused), fresh, 'scaled in place: the values a fresh scaled transpose gives');
  m.data.set(original);

  // The copy was the caller's to change, so the next request transposes again.
  reused.fill(7);
  const again = gramOperand(m, 'columns', { precision: 'float32', columnScale: scale, workspace: ws, copy: true });
  assert.deepEqual(Float32Array.from(again), fresh);

  // A buffer handed to another user in between is not taken for M's transpose either.
  await gram(m, { precision: 'float32', side: 'columns', workspace: ws, out: new Float32Array(300 * 300) });
  ws.f32('gram-operand32', 10).fill(3);
  const afterOther = gramOperand(m, 'columns', { precision: 'float32', columnScale: scale, workspace: ws, copy: true });
  assert.deepEqual(Float32Array.from(afterOther), fresh);

  // A new analysis forgets what the workspace holds: its E may live in the storage of the last one.
  await gram(m, { precision: 'float32', side: 'columns', workspace: ws, out: new Float32Array(300 * 300) });
  ws.forgetTags();
  m.data.fill(0);
  const forgotten = gramOperand(m, 'columns', { precision: 'float32', columnScale: scale, workspace: ws, copy: true });
  assert.ok(
    forgotten.every((v) => v === 0),
    'transposed afresh from the matrix as it is now',
  );
  m.data.set(original);

  // Another matrix of the same shape is never served M's transpose.
  const other = matrix(700, 300, 2);
  await gram(m, { precision: 'float32', side: 'columns', workspace: ws, out: new Float32Array(300 * 300) });
  const otherOperand = gramOperand(other, 'columns', {
    precision: 'float32',
    columnScale: scale,
    workspace: ws,
    copy: true,
  });
  const expected = gramOperand(other, 'columns', {
    precision: 'float32',
    columnScale: scale,
    workspace: new Workspace(),
    copy: true,
  });
  assert.deepEqual(Float32Array.from(otherOperand), Float32Array.from(expected));
});
