/**
 * The CLI commands and worker methods of the whole-checkpoint analyses (allocate, reassemble,
 * fit-steps, compare), run in-process on a small Llama-named checkpoint with a statistics file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ActivationAccumulator, type LayerStatistics } from '../../../src/engine/calibration/accumulator';
import { writeStatsFile } from '../../../src/engine/calibration/statsFile';
import { allocate } from '../../../src/engine/methods/allocation';
import { parseRecipe } from '../../../src/engine/methods/recipe';
import { allocateCommand } from '../../../src/cli/commands/allocate';
import { compareCommand } from '../../../src/cli/commands/compare';
import { fitStepsCommand } from '../../../src/cli/commands/fitSteps';
import { reassembleCommand } from '../../../src/cli/commands/reassemble';
import { exportCommand } from '../../../src/cli/commands/export';
import { createHandlers } from '../../../src/worker/handlers';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { activations, weights } from './helpers';
import { scratchOutput } from '../../helpers/output';

const H = 32;
const layerNames = {
  q: 'model.layers.0.self_attn.q_proj.weight',
  k: 'model.layers.0.self_attn.k_proj.weight',
  v: 'model.layers.0.self_attn.v_proj.weight',
  o: 'model.layers.0.self_attn.o_proj.weight',
  up: 'model.layers.0.mlp.up_proj.weight',
};
const shapes: Record<string, [number, number]> = {
  [layerNames.q]: [H, H],
  [layerNames.k]: [16, H],
  [layerNames.v]: [16, H],
  [layerNames.o]: [H, H],
  [layerNames.up]: [64, H],
};

function capture(): { stream: Writable; text: () => string } {
  let s = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      s += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => s };
}

function fixture(): { dir: string; ckpt: string; stats: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ql-analyses-'));
  const tensors = Object.entries(shapes).map(([name, [o, i]], k) =>
    f32Tensor(name, [o, i], weights(o, i, 60 + k, 0.05 * (k + 1))),
  );
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: H }),
  );
  return { dir, ckpt: join(dir, 'model.safetensors'), stats: join(dir, 'stats.safetensors') };
}

async function writeStats(path: string): Promise<void> {
  const stats = new Map<string, LayerStatistics>();
  for (const [name, [, nIn]] of Object.entries(shapes)) {
    const acc = new ActivationAccumulator(nIn, { gram: true, sampleRows: 128 });
    for (let b = 0; b < 4; b++) acc.addBatch(activations(64, nIn, 7 + b), 64);
    stats.set(name, acc.finish());
  }
  await writeStatsFile(await scratchOutput(path), stats);
}

test('allocate → recipe → export --recipe, and the worker method returns the same allocation', async () => {
  const f = fixture();
  try {
    await writeStats(f.stats);
    const recipePath = join(f.dir, 'recipe.json');
    const out = capture();
    const code = await allocateCommand(
      [
        f.ckpt,
        '--budget-bits',
        '6',
        '--formats',
        'mxint4,mxint3',
        '--max-rank',
        '8',
        '--calib',
        f.stats,
        '--method',
        'qera-exact',
        '--out',
        recipePath,
      ],
      out.stream,
    );
    assert.equal(code, 0);
    assert.match(out.text(), /allocation \((greedy|exact|uniform)\)/);
    assert.match(out.text(), /uniform mxint\d rank \d+/);
    const recipe = parseRecipe(readFileSync(recipePath, 'utf8'));
    assert.equal(Object.keys(recipe.layers).length, 5);
    assert.equal(recipe.method, 'qera-exact');
    const exported = join(f.dir, 'q.safetensors');
    assert.equal(
      await exportCommand([
        f.ckpt,
        '--recipe',
        recipePath,
        '--calib',
        f.stats,
        '--method',
        'qera-exact',
        '--out',
        exported,
      ]),
      0,
    );

    const handlers = createHandlers();
    const ctx = { signal: new AbortController().signal, progress: () => undefined };
    const r = await handlers.allocateRanks(
      {
        checkpoint: f.ckpt,
        calibration: f.stats,
        settings: { method: 'qera-exact', factorFormat: 'mxint8', factorTiling: 'last-dim', maxRank: 8 },
        formats: ['mxint4', 'mxint3'],
        budget: { bitsPerWeight: 6 },
      },
      ctx,
    );
    assert.deepEqual(r.recipe.layers, recipe.layers);
    // The webview re-runs the pure allocation on the returned curves for another budget.
    const again = allocate(r.layers, { bitsPerWeight: 5 }, { objective: 'output-relative' });
    assert.ok(again.best.bitsPerWeight <= 5 && again.best.objective >= r.result.best.objective);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('reassemble groups q/k/v into one site and reports beside L²QER; the worker method agrees', async () => {
  const f = fixture();
  try {
    await writeStats(f.stats);
    const out = capture();
    assert.equal(await reassembleCommand([f.ckpt, '--calib', f.stats, '--rank', '4', '--json'], out.stream), 0);
    const records = out
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { site: string; consumers: string[]; l2qer: { rank: number } });
    const qkv = records.find((r) => r.consumers.length === 3)!;
    assert.equal(qkv.site, 'model.layers.0.self_attn.{q,k,v}_proj.weight');
    assert.equal(qkv.l2qer.rank, 4);
    const handlers = createHandlers();
    const ctx = { signal: new AbortController().signal, progress: () => undefined };
    const sites = await handlers.reassemblySites({ checkpoint: f.ckpt }, ctx);
    const site = sites.find((s) => s.layers.length === 3)!;
    const r = await handlers.reassembleSite(
      { checkpoint: f.ckpt, calibration: f.stats, layers: site.layers, site: site.site, options: { rank: 4 } },
      ctx,
    );
    assert.equal(r.consumers.length, 3);
    assert.equal(r.after.channelMax.length, H);
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('fit-steps and compare run end to end', async () => {
  const f = fixture();
  try {
    await writeStats(f.stats);
    const out = capture();
    assert.equal(
      await fitStepsCommand(
        [f.ckpt, '--format', 'int3:g16', '--calib', f.stats, '--method', 'qera-exact', '--rank', '4', '--json'],
        out.stream,
      ),
      0,
    );
    for (const line of out.text().trim().split('\n')) {
      const c = JSON.parse(line) as { summary: { fitted: number; rtn: number; lsqInit: number }; fittedFormat: string };
      assert.equal(c.fittedFormat, 'int3:g16:fitted');
      assert.ok(c.summary.fitted <= Math.min(c.summary.rtn, c.summary.lsqInit));
    }
    const exported = join(f.dir, 'q.safetensors');
    assert.equal(await exportCommand([f.ckpt, '--format', 'int4:g16', '--method', 'rtn', '--out', exported]), 0);
    const cmp = capture();
    assert.equal(await compareCommand([f.ckpt, exported, '--json'], cmp.stream), 0);
    const c = JSON.parse(cmp.text()) as { layers: { verdict: string; rank90: number }[] };
    assert.equal(c.layers.length, 5);
    assert.ok(c.layers.every((l) => l.verdict === 'changed'));
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});
