/**
 * An export of a sharded checkpoint interrupted (SIGINT, SIGTERM, SIGHUP) at random points leaves
 * no file behind: the output folder is empty afterwards, or holds the complete export when the run
 * finished first, and the checkpoint is byte-identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliScript } from '../../helpers/workerBundle';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { mulberry32 } from '../../../src/engine/random';

const RUNS = 20;
const PARALLEL = 2;

/** Three shards and an index, with layers big enough that the export writes for a while. */
function shardedCheckpoint(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ql-signals-ckpt-'));
  const r = mulberry32(8);
  const n = 192;
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < 3; s++) {
    const file = `model-0000${s + 1}-of-00003.safetensors`;
    const tensors = [0, 1].map((j) => {
      const name = `model.layers.${2 * s + j}.mlp.up_proj.weight`;
      weightMap[name] = file;
      return f32Tensor(
        name,
        [n, n],
        Array.from({ length: n * n }, () => r() - 0.5),
      );
    });
    const embed = `model.layers.${2 * s}.input_layernorm.weight`;
    weightMap[embed] = file;
    tensors.push(f32Tensor(embed, [n], new Array(n).fill(1)));
    writeSafetensors(join(dir, file), tensors);
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama' }));
  return dir;
}

function digest(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((f) => [
        f,
        createHash('sha256')
          .update(readFileSync(join(dir, f)))
          .digest('hex'),
      ]),
  );
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | 'none';
  atMs: number;
  writing: boolean;
  left: string[];
  /** Whether a q.safetensors left behind is byte for byte the uninterrupted run's. */
  complete: boolean;
  /** When a temporary output first appeared (watched in an uninterrupted run only). */
  writingFromMs?: number;
}

function exportRun(
  ckpt: string,
  outDir: string,
  signal: NodeJS.Signals | null,
  atMs: number,
  expected?: Buffer,
): Promise<Outcome & { ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(
      process.execPath,
      [
        cliScript(),
        'export',
        join(ckpt, 'model.safetensors.index.json'),
        '--rank',
        '16',
        '--out',
        join(outDir, 'q.safetensors'),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let writing = false;
    let writingFromMs: number | undefined;
    const watch = signal
      ? undefined
      : setInterval(() => {
          if (writingFromMs === undefined && readdirSync(outDir).some((f) => f.includes('.partial-'))) {
            writingFromMs = Date.now() - t0;
          }
        }, 5);
    const timer =
      signal &&
      setTimeout(() => {
        writing = readdirSync(outDir).some((f) => f.includes('.partial-'));
        child.kill(signal);
      }, atMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      if (timer) clearTimeout(timer);
      if (watch) clearInterval(watch);
      if (code === 1) reject(new Error(`export failed:\n${stderr}`));
      const left = readdirSync(outDir);
      const q = join(outDir, 'q.safetensors');
      const complete = left.includes('q.safetensors') && (!expected || readFileSync(q).equals(expected));
      resolve({ code, signal: signal ?? 'none', atMs, writing, left, complete, ms: Date.now() - t0, writingFromMs });
    });
  });
}

test(`an export of a sharded checkpoint interrupted at ${RUNS} random points leaves no file behind`, async () => {
  const ckpt = shardedCheckpoint();
  const before = digest(ckpt);
  const base = mkdtempSync(join(tmpdir(), 'ql-signals-out-'));
  const reference = join(base, 'reference');
  mkdirSync(reference);
  const cold = await exportRun(ckpt, reference, null, 0);
  assert.equal(cold.code, 0);
  assert.deepEqual(cold.left, ['q.safetensors']);
  const expected = readFileSync(join(reference, 'q.safetensors'));
  // The interrupted runs are timed against a second, warm run: the first pays for cold caches
  // (seen 1105 ms against about 1000 for the runs after it, so that most signals aimed at its
  // writing phase came after the others had finished).
  const warm = join(base, 'warm');
  mkdirSync(warm);
  const full = await exportRun(ckpt, warm, null, 0, expected);
  assert.ok(full.code === 0 && full.complete, 'the warm run wrote the same export');
  assert.ok(full.writingFromMs !== undefined, 'the uninterrupted run was seen writing');
  const writingFrom = full.writingFromMs;

  const seed = Date.now() % 100000;
  const random = mulberry32(seed);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const outcomes: Outcome[] = [];
  let next = 0;
  const lane = async () => {
    while (next < RUNS) {
      const i = next++;
      const outDir = join(base, `run-${i}`);
      mkdirSync(outDir);
      // Every other run anywhere from start-up to the end of the uninterrupted run's duration, the
      // others while that run was writing (start-up is a large share of a run this short).
      const from = i % 2 === 0 ? 0 : writingFrom;
      const at = Math.round(from + random() * (full.ms - from));
      outcomes.push(await exportRun(ckpt, outDir, signals[i % 3]!, at, expected));
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));

  const report = `seed ${seed}, full run ${full.ms} ms: ${outcomes.map((o) => `${o.signal}@${o.atMs}ms→${o.code}${o.writing ? ' (writing)' : ''}`).join(', ')}`;
  for (const o of outcomes) {
    // Nothing, or the whole export (a signal that came after the rename, as the process ended).
    const whole = o.left.length === 1 && o.complete;
    assert.ok(
      o.left.length === 0 || whole,
      `files left after ${o.signal} at ${o.atMs} ms: ${o.left.join(', ')}; ${report}`,
    );
    if (o.code === 0) assert.ok(whole, report);
    // null: the signal's default action, before the CLI had set its handlers or after it was done.
    else if (o.code !== null)
      assert.equal(o.code, 128 + (o.signal === 'SIGHUP' ? 1 : o.signal === 'SIGINT' ? 2 : 15), report);
  }
  assert.ok(
    outcomes.filter((o) => o.writing && o.code !== 0).length >= 4,
    `too few runs were interrupted while writing for the test to mean anything: ${report}`,
  );
  assert.deepEqual(digest(ckpt), before, 'the checkpoint is byte-identical');
});
