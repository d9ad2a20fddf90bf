import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { planExport } from '../../../src/engine/export/plan';
import { runExport } from '../../../src/engine/export/targets';
import { exportCommand } from '../../../src/cli/commands/export';
import { parseRecipe } from '../../../src/engine/methods/recipe';
import { rng } from '../methods/helpers';
import { isQuantLensError } from '../../../src/engine/errors';

const SETTINGS = { method: 'lqer', weightFormat: 'mxint4', factorFormat: 'mxint8', factorTiling: 'last-dim' } as const;

function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'ql-plan-'));
  const r = rng(3);
  writeSafetensors(join(dir, 'model.safetensors'), [
    f32Tensor(
      'model.layers.0.self_attn.q_proj.weight',
      [48, 32],
      Array.from({ length: 48 * 32 }, () => r()),
    ),
    f32Tensor(
      'model.layers.0.mlp.down_proj.weight',
      [32, 16],
      Array.from({ length: 32 * 16 }, () => r()),
    ),
  ]);
  return { dir, path: join(dir, 'model.safetensors') };
}

function recipe(layers: Record<string, { format: string; rank: number }>) {
  return parseRecipe(JSON.stringify({ kind: 'quant-lens-recipe', version: 1, layers }));
}

test('a uniform rank is capped at each layer size; a recipe rank above it is refused naming the layer', async () => {
  const f = fixture();
  const ckpt = await openCheckpoint(f.path);
  try {
    const plan = planExport({ checkpoint: ckpt, layers: ckpt.linearLayers, settings: SETTINGS, rank: 24 });
    assert.deepEqual(
      plan.layers.map((l) => [l.name, l.rank]),
      [
        ['model.layers.0.self_attn.q_proj.weight', 24],
        ['model.layers.0.mlp.down_proj.weight', 16],
      ],
    );
    assert.throws(
      () =>
        planExport({
          checkpoint: ckpt,
          layers: [],
          settings: SETTINGS,
          rank: 0,
          recipe: recipe({ 'model.layers.0.mlp.down_proj.weight': { format: 'int4', rank: 17 } }),
          recipeFile: 'r.json',
        }),
      /r\.json: layer "model\.layers\.0\.mlp\.down_proj\.weight": rank 17 is above .*min\(out, in\) = 16/,
    );
    assert.throws(
      () =>
        planExport({
          checkpoint: ckpt,
          layers: [],
          settings: SETTINGS,
          rank: 0,
          recipe: recipe({ 'model.layers.7.mlp.down_proj.weight': { format: 'int4', rank: 1 } }),
          recipeFile: 'r.json',
        }),
      /r\.json: the recipe names layer "model\.layers\.7\.mlp\.down_proj\.weight" that is not a linear layer/,
    );
    const rtn = planExport({
      checkpoint: ckpt,
      layers: ckpt.linearLayers,
      settings: { ...SETTINGS, method: 'rtn' },
      rank: 8,
    });
    assert.ok(
      rtn.layers.every((l) => l.rank === 0),
      'RTN writes no correction',
    );
    await assert.rejects(
      runExport(
        'gguf-or-whatever',
        { checkpoint: ckpt, layers: ckpt.linearLayers, settings: SETTINGS, rank: 4 },
        { out: join(f.dir, 'x') },
      ),
      /--to must be one of quant-lens/,
    );
  } finally {
    await ckpt.close();
  }
});

test('export --recipe naming an unknown layer exits 2 and writes nothing', async () => {
  const f = fixture();
  const r = join(f.dir, 'recipe.json');
  writeFileSync(
    r,
    JSON.stringify({
      kind: 'quant-lens-recipe',
      version: 1,
      layers: { 'lm_head.weight': { format: 'mxint4', rank: 4 } },
    }),
  );
  const out = join(f.dir, 'q.safetensors');
  // A QuantLensError is what the CLI turns into exit code 2 with the message.
  await assert.rejects(
    exportCommand([f.path, '--recipe', r, '--out', out]),
    (e: unknown) => isQuantLensError(e) && /recipe\.json: the recipe names layer "lm_head\.weight"/.test(e.message),
  );
  assert.equal(existsSync(out), false);
});
