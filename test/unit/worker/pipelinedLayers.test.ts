/**
 * The CLI keeps two layers in flight on one thread: the next layer is read and quantized while the
 * helper thread reduces the band of the one before. The two take turns on the thread and each has
 * its own scratch memory, so every result must be the one the layer gets analysed alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LayerAnalysis } from '../../../src/engine/methods/analyzeLayer';
import { CheckpointCache, StatsCache, createHandlers } from '../../../src/worker/handlers';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { writeOutlierStats } from '../../helpers/outlierStats';
import { rng } from '../methods/helpers';

// From 512 wide the spectra take the float32 routes, and E's goes to the helper thread.
const LAYERS = [
  { name: 'model.layers.0.mlp.up_proj.weight', shape: [640, 576] },
  { name: 'model.layers.0.mlp.down_proj.weight', shape: [576, 640] },
  { name: 'model.layers.1.mlp.up_proj.weight', shape: [640, 576] },
  { name: 'model.layers.1.mlp.down_proj.weight', shape: [576, 640] },
] as const;

const settings = {
  method: 'l2qer',
  weightFormat: 'mxint4',
  factorFormat: 'mxint8',
  factorTiling: 'last-dim',
  maxRank: 32,
} as const;

async function fixture(): Promise<{ dir: string; ckpt: string; stats: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ql-pipelined-'));
  const r = rng(23);
  writeSafetensors(
    join(dir, 'model.safetensors'),
    LAYERS.map((l, k) => {
      const cols = l.shape[1];
      // Every other layer has a few columns 100× the rest: E's own spectrum is then too steep for
      // the float32 route, and the one from the helper is redone here after the wait, from the
      // Gram this analysis left in its workspace.
      const steep = k % 2 === 1;
      return f32Tensor(
        l.name,
        [...l.shape],
        Float32Array.from({ length: l.shape[0] * cols }, (_, i) => r() * 0.05 * (steep && i % cols < 3 ? 100 : 1)),
      );
    }),
  );
  // A few outlier channels: the scaled spectrum gets a cliff and takes the deflated route.
  await writeOutlierStats(join(dir, 'stats.safetensors'), LAYERS, { tokens: 16, outliers: 6, big: 40, random: r });
  return { dir, ckpt: join(dir, 'model.safetensors'), stats: join(dir, 'stats.safetensors') };
}

function comparable(a: LayerAnalysis): Omit<LayerAnalysis, 'timings'> {
  const { timings: _t, ...rest } = a;
  return rest;
}

test(
  'layers analysed two at a time on one thread get the results they get alone, and the next starts before the one before ends',
  { skip: availableParallelism() < 2 ? 'needs a second core for the helper thread' : false },
  async () => {
    const f = await fixture();
    const checkpoints = new CheckpointCache();
    const stats = new StatsCache();
    try {
      const h = createHandlers(checkpoints, stats);
      const started = new Map<string, number>();
      const ended = new Map<string, number>();
      const analyse = async (name: string) => {
        const a = await h.analyzeLayer(
          { checkpoint: f.ckpt, layer: name, settings, calibration: f.stats },
          {
            signal: new AbortController().signal,
            progress: () => {
              if (!started.has(name)) started.set(name, performance.now());
            },
          },
        );
        ended.set(name, performance.now());
        return comparable(a);
      };
      const alone = new Map<string, Omit<LayerAnalysis, 'timings'>>();
      for (const l of LAYERS) alone.set(l.name, await analyse(l.name));
      started.clear();
      ended.clear();
      // Two in flight at every moment, as the CLI's layer loop keeps them.
      const got = new Map<string, Omit<LayerAnalysis, 'timings'>>();
      let next = 0;
      const lane = async () => {
        while (next < LAYERS.length) {
          const name = LAYERS[next++]!.name;
          got.set(name, await analyse(name));
        }
      };
      await Promise.all([lane(), lane()]);
      for (const [k, l] of LAYERS.entries()) {
        const a = got.get(l.name)!;
        assert.deepEqual(a, alone.get(l.name), l.name);
        // The steep layers' spectra were redone here after the helper's (a shared workspace would
        // have had the other layer's Gram in it by then).
        assert.deepEqual(
          a.spectrumRoutes,
          k % 2 === 1
            ? { plain: 'float64/float64', scaled: 'float64/float64' }
            : { plain: 'float32/float32', scaled: 'deflated' },
          `${l.name}: routes`,
        );
      }
      // The overlap: some layer began while the one before it was still waiting for the helper.
      const overlapped = LAYERS.slice(1).some((l, i) => started.get(l.name)! < ended.get(LAYERS[i]!.name)!);
      assert.ok(overlapped, 'a layer started while the one before it was still in flight');
    } finally {
      await checkpoints.closeAll();
      await stats.closeAll();
      rmSync(f.dir, { recursive: true, force: true });
    }
  },
);
