/**
 * Mutation fuzzing of every reader: valid fixture files are damaged at random (bit flips, extreme
 * 64-bit values, truncation, inserted and duplicated bytes) and each reader must either open and
 * decode them or throw a QuantLensError, within a time limit. Seeded: a failure prints the seed and
 * iteration, and QL_FUZZ_SEED / QL_FUZZ_ITERATIONS reproduce or extend a run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { isQuantLensError } from '../../../src/engine/errors';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { fixture, tempDir } from './helpers';
import { mulberry32 as rng } from '../../../src/engine/random';

const SEED = Number(process.env.QL_FUZZ_SEED ?? 0x5eed);
const ITERATIONS = Number(process.env.QL_FUZZ_ITERATIONS ?? 150);
/** Wall-time budget for the whole fuzz test, so CI time stays bounded whatever the machine. */
const BUDGET_MS = Number(process.env.QL_FUZZ_BUDGET_MS ?? 18_000);
const PER_CASE_MS = 3_000;

function mutate(src: Uint8Array, random: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(random() * n);
  let b = Uint8Array.from(src);
  const rounds = 1 + pick(4);
  for (let r = 0; r < rounds; r++) {
    // Mutations cluster near the start, where headers live, half of the time.
    const at = random() < 0.5 ? pick(Math.min(b.length, 512)) : pick(b.length);
    switch (pick(7)) {
      case 0:
        b[at] = b[at]! ^ (1 << pick(8));
        break;
      case 1:
        b[at] = [0, 0xff, 0x7f, 0x80][pick(4)]!;
        break;
      case 2: {
        // An extreme 64-bit little-endian value: lengths, counts and offsets.
        const v = [0xffffffffffffffffn, 0x8000000000000000n, 0n, 0xffffffffn, BigInt(b.length) * 2n][pick(5)]!;
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (at + 8 <= b.length) dv.setBigUint64(at, v, true);
        break;
      }
      case 3:
        b = b.slice(0, at);
        break;
      case 4: {
        const extra = Uint8Array.from({ length: 1 + pick(16) }, () => pick(256));
        const out = new Uint8Array(b.length + extra.length);
        out.set(b.subarray(0, at));
        out.set(extra, at);
        out.set(b.subarray(at), at + extra.length);
        b = out;
        break;
      }
      case 5: {
        const len = Math.min(1 + pick(64), b.length - at);
        const to = pick(Math.max(1, b.length - len));
        b.copyWithin(to, at, at + len);
        break;
      }
      default:
        for (let i = 0; i < 4 && at + i < b.length; i++) b[at + i] = pick(256);
    }
  }
  return b;
}

interface Target {
  /** Fixture file to mutate. */
  file: string;
  /** Files copied unmutated beside it (external data, shards, config). */
  companions: string[];
}

const TARGETS: Target[] = [
  { file: fixture('gpt2/model.safetensors'), companions: [fixture('gpt2/config.json')] },
  {
    file: fixture('llama-sharded/model.safetensors.index.json'),
    companions: [1, 2, 3, 4].map((i) => fixture(`llama-sharded/model-0000${i}-of-00004.safetensors`)),
  },
  { file: fixture('llama-sharded/model-00001-of-00004.safetensors'), companions: [] },
  { file: fixture('gguf/spec-v3.gguf'), companions: [] },
  { file: fixture('gguf/writer-v3.gguf'), companions: [] },
  { file: fixture('torch/odd.pt'), companions: [] },
  { file: fixture('torch/pytorch_model.bin'), companions: [] },
  { file: fixture('onnx-ops/model.onnx'), companions: [fixture('onnx-ops/weights.bin')] },
  {
    file: fixture('tfjs/model.json'),
    companions: ['group1-shard1of2.bin', 'group1-shard2of2.bin', 'group2-shard1of1.bin'].map((f) => fixture('tfjs', f)),
  },
  {
    file: fixture('tfjs/group1-shard1of2.bin'),
    companions: [
      fixture('tfjs/model.json'),
      fixture('tfjs/group1-shard2of2.bin'),
      fixture('tfjs/group2-shard1of1.bin'),
    ],
  },
];

async function exercise(path: string): Promise<void> {
  const ckpt = await openCheckpoint(path);
  try {
    for (const t of ckpt.tensors) {
      try {
        await ckpt.readTensor(t.name);
      } catch (e) {
        if (!isQuantLensError(e)) throw e;
      }
    }
    for (const l of ckpt.linearLayers.slice(0, 8)) {
      try {
        await ckpt.readWeight(l.name);
      } catch (e) {
        if (!isQuantLensError(e)) throw e;
      }
    }
  } finally {
    await ckpt.close();
  }
}

test('mutated checkpoints open, or fail with a QuantLensError, quickly', { timeout: 120_000 }, async () => {
  const random = rng(SEED);
  const dir = tempDir('ql-fuzz-');
  const originals = TARGETS.map((t) => readFileSync(t.file));
  const started = Date.now();
  let cases = 0;
  let opened = 0;
  const codes = new Map<string, number>();
  for (let i = 0; i < ITERATIONS && Date.now() - started < BUDGET_MS; i++) {
    for (const [k, target] of TARGETS.entries()) {
      const caseDir = join(dir, `${i}-${k}`);
      mkdirSync(caseDir);
      for (const c of target.companions) copyFileSync(c, join(caseDir, basename(c)));
      const path = join(caseDir, basename(target.file));
      writeFileSync(path, mutate(originals[k]!, random));
      const t0 = Date.now();
      try {
        await exercise(path);
        opened++;
      } catch (e) {
        if (!isQuantLensError(e)) {
          assert.fail(
            `seed ${SEED}, iteration ${i}, ${basename(target.file)}: not a QuantLensError: ${e instanceof Error ? e.stack : String(e)} (mutated file kept at ${path})`,
          );
        }
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      }
      const ms = Date.now() - t0;
      assert.ok(
        ms < PER_CASE_MS,
        `seed ${SEED}, iteration ${i}, ${basename(target.file)}: took ${ms} ms (file at ${path})`,
      );
      rmSync(caseDir, { recursive: true });
      cases++;
    }
  }
  assert.ok(cases >= TARGETS.length * 10, `only ${cases} cases ran in the time budget`);
  rmSync(dir, { recursive: true, force: true });
  console.log(
    `fuzz: ${cases} cases (seed ${SEED}), ${opened} opened, errors ${JSON.stringify(Object.fromEntries(codes))}`,
  );
});
