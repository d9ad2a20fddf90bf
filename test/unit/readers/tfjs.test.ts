import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { assertSameValues, fixture, loadReference, rejectsWith, tempDir } from './helpers';

const DENSE = 'StatefulPartitionedCall/model/dense/MatMul/ReadVariableOp';
const DENSE1 = 'StatefulPartitionedCall/model/dense_1/MatMul/ReadVariableOp';
const CONV = 'StatefulPartitionedCall/model/conv/Conv2D/ReadVariableOp';

test('a TF.js graph model: shards cut mid-tensor, uint8 and float16 quantization, kernels as [out, in]', async () => {
  const ref = loadReference(fixture('tfjs/reference.json'));
  const ckpt = await openCheckpoint(fixture('tfjs/model.json'));
  try {
    assert.equal(ckpt.format, 'tfjs');
    assert.equal(ckpt.metadata['tfjs.format'], 'graph-model');
    assert.equal(ckpt.files.length, 4);
    for (const [name, r] of Object.entries(ref.tensors)) assertSameValues(await ckpt.readTensor(name), r, name);
    for (const [name, r] of Object.entries(ref.layers)) {
      const w = await ckpt.readWeight(name);
      assert.deepEqual([w.out, w.in], r.shape, name);
      assertSameValues(w.data, r, name);
    }
    const byName = new Map(ckpt.linearLayers.map((l) => [l.name, l]));
    assert.equal(byName.get(DENSE)!.storedTransposed, true);
    assert.equal(byName.get(DENSE1)!.storedTransposed, false, 'transpose_b keeps [out, in]');
    assert.equal(byName.get(DENSE1)!.dtype, 'uint8→float32');
    assert.deepEqual([byName.get(CONV)!.role, byName.get(CONV)!.shape], ['conv1x1', [5, 3]]);
    assert.equal(byName.has('shape'), false);
  } finally {
    await ckpt.close();
  }
});

function copyTfjs(
  edit: (json: { weightsManifest: { paths: string[]; weights: { name: string; shape: number[] }[] }[] }) => void,
): string {
  const dir = tempDir();
  for (const f of ['group1-shard1of2.bin', 'group1-shard2of2.bin', 'group2-shard1of1.bin'])
    copyFileSync(fixture('tfjs', f), join(dir, f));
  const json = JSON.parse(readFileSync(fixture('tfjs/model.json'), 'utf8'));
  edit(json);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
  return join(dir, 'model.json');
}

test('TF.js weight paths must stay in the folder, and shards must hold every weight', async () => {
  let path = copyTfjs((j) => (j.weightsManifest[0]!.paths[0] = '../group1-shard1of2.bin'));
  await rejectsWith(() => openCheckpoint(path), 'unsafe', /climbs out/, path);
  path = copyTfjs((j) => (j.weightsManifest[0]!.paths[0] = '/etc/hostname'));
  await rejectsWith(() => openCheckpoint(path), 'unsafe', /absolute path/, path);
  path = copyTfjs((j) => j.weightsManifest[0]!.paths.pop());
  await rejectsWith(() => openCheckpoint(path), 'malformed', /truncated/, path);
  path = copyTfjs((j) => (j.weightsManifest[1]!.weights[1]!.name = DENSE));
  await rejectsWith(() => openCheckpoint(path), 'malformed', /two weights are named/, path);
  path = copyTfjs((j) => (j.weightsManifest[0]!.weights[0]!.shape = [-1, 3]));
  await rejectsWith(() => openCheckpoint(path), 'malformed', /not a list of sizes/, path);
  path = copyTfjs((j) => (j.weightsManifest = 'x' as never));
  await rejectsWith(() => openCheckpoint(path), 'malformed', /weightsManifest/, path);
});
