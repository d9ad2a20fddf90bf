/**
 * A worker analysing layer after layer (a sweep, panels opened one after another) reads each
 * weight into the storage the layer before left behind, and E overwrites it: every result must
 * still be the one a read of its own gives, in any order of sizes, with and without a store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LayerAnalysis } from '../../../src/engine/methods/analyzeLayer';
import { sharedWeightBuffers } from '../../../src/engine/readers/weightBuffers';
import { createHandlers } from '../../../src/worker/handlers';
import { bf16Tensor, f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { writeOutlierStats } from '../../helpers/outlierStats';
import { rng } from '../methods/helpers';

const LAYERS = [
  { name: 'model.layers.0.mlp.up_proj.weight', shape: [192, 160], dtype: 'f32' },
  { name: 'model.layers.0.mlp.down_proj.weight', shape: [160, 192], dtype: 'bf16' },
  { name: 'model.layers.0.self_attn.k_proj.weight', shape: [48, 160], dtype: 'f32' },
  { name: 'model.layers.1.mlp.up_proj.weight', shape: [192, 160], dtype: 'bf16' },
] as const;

const settings = {
  method: 'l2qer',
  weightFormat: 'mxint4',
  factorFormat: 'mxint8',
  factorTiling: 'last-dim',
  maxRank: 48,
} as const;

async function fixture(): Promise<{ dir: string; ckpt: string; stats: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ql-sequence-'));
  const r = rng(11);
  writeSafetensors(
    join(dir, 'model.safetensors'),
    LAYERS.map((l) => {
      const v = Float32Array.from({ length: l.shape[0] * l.shape[1] }, () => r() * 0.05);
      return l.dtype === 'f32' ? f32Tensor(l.name, [...l.shape], v) : bf16Tensor(l.name, [...l.shape], v);
    }),
  );
  await writeOutlierStats(join(dir, 'stats.safetensors'), LAYERS, { tokens: 8, outliers: 3, big: 15, random: r });
  return { dir, ckpt: join(dir, 'model.safetensors'), stats: join(dir, 'stats.safetensors') };
}

/** The result without what differs from run to run. */
function comparable(a: LayerAnalysis): Omit<LayerAnalysis, 'timings'> {
  const { timings: _t, ...rest } = a as LayerAnalysis & { stored?: unknown };
  delete (rest as { stored?: unknown }).stored;
  return rest;
}

test('layers analysed one after another in reused storage give the results of reads of their own', async () => {
  const f = await fixture();
  try {
    const h = createHandlers();
    const pool = sharedWeightBuffers();
    let stores = 0;
    const analyse = async (name: string, withStore: boolean) =>
      comparable(
        await h.analyzeLayer(
          {
            checkpoint: f.ckpt,
            layer: name,
            settings,
            calibration: f.stats,
            // A store of its own each time, so that every call computes.
            ...(withStore ? { store: join(f.dir, `store-${stores++}`) } : {}),
          },
          { signal: new AbortController().signal, progress: () => undefined },
        ),
      );
    for (const withStore of [false, true]) {
      // Each layer read into fresh storage: the spare taken away before every call.
      const expected = new Map<string, Omit<LayerAnalysis, 'timings'>>();
      for (const l of LAYERS) {
        pool.acquire(0);
        expected.set(l.name, await analyse(l.name, withStore));
      }
      // Big, transposed shape, small, big again: each read lands in what the one before left.
      for (const i of [0, 1, 2, 3, 0, 2, 1]) {
        const name = LAYERS[i]!.name;
        assert.equal(pool.held, 192 * 160, 'the spare of the call before is there to reuse');
        const got = await analyse(name, withStore);
        assert.deepEqual(got, expected.get(name), `${name}${withStore ? ' (with a store)' : ''}`);
      }
    }
    assert.ok(pool.held >= 192 * 160, 'the last layer left its storage for the next');
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('NaN and infinite weights, counted by the analysis itself (the reader’s count skipped), stop it with a clear error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-nonfinite-'));
  try {
    const name = 'model.layers.0.mlp.up_proj.weight';
    const r = rng(5);
    const w = Float32Array.from({ length: 64 * 96 }, () => r() * 0.05);
    w[5] = NaN;
    w[700] = Infinity;
    w[3000] = -Infinity;
    writeSafetensors(join(dir, 'model.safetensors'), [f32Tensor(name, [64, 96], w)]);
    const h = createHandlers();
    for (const weightFormat of ['mxint4', 'int4:g32']) {
      for (const spectra of [true, false]) {
        await assert.rejects(
          h.analyzeLayer(
            {
              checkpoint: join(dir, 'model.safetensors'),
              layer: name,
              settings: { ...settings, method: 'lqer', weightFormat, maxRank: 8, spectra },
            },
            { signal: new AbortController().signal, progress: () => undefined },
          ),
          (e: Error & { code?: string }) =>
            e.code === 'malformed' &&
            e.message ===
              `${join(dir, 'model.safetensors')}: ${name} holds 3 NaN or infinite weights: its quantization error cannot be analysed`,
          weightFormat,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
