/**
 * No telemetry and no litter: onnxruntime-node's native library writes a telemetry database and a
 * device id under ~/.cache/Microsoft/DeveloperTools/.onnxruntime and a mat-debug-<pid>.log in the
 * temporary folder unless ORT_DISABLE_TELEMETRY=1 is set before its first session. A CLI run —
 * onnxruntime in the main thread (calibrate) and in worker threads (inspect --jobs) — leaves its
 * HOME and TMPDIR as it found them; a command that needs no graph never loads onnxruntime.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { cliScript } from '../../helpers/workerBundle';
import { withoutTelemetrySwitches } from '../../helpers/telemetrySwitches';
import { f32Tensor, writeSafetensors } from '../../helpers/safetensorsWriter';
import { convModel } from '../evaluation/smallGraphs';
import { rng } from '../methods/helpers';

const root = join(import.meta.dirname, '../../..');

/** Every file below `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** A fresh HOME, cache and TMPDIR, and an environment without anything that silences onnxruntime (CI included). */
function sandbox() {
  const base = mkdtempSync(join(tmpdir(), 'ql-telemetry-'));
  const home = join(base, 'home');
  const temp = join(base, 'tmp');
  mkdirSync(home);
  mkdirSync(temp);
  const env = withoutTelemetrySwitches({
    ...process.env,
    HOME: home,
    TMPDIR: temp,
    XDG_CACHE_HOME: join(home, '.cache'),
  });
  return { base, home, temp, env };
}

/** Node, with a preload that reports whether onnxruntime-node was ever required. */
function tracer(dir: string): string {
  const file = join(dir, 'trace-ort.cjs');
  writeFileSync(
    file,
    `const M = require('module'); const load = M._load; let seen = false;
     M._load = function (req, ...rest) { if (req === 'onnxruntime-node') seen = true; return load.call(this, req, ...rest); };
     process.on('exit', () => process.stderr.write(seen ? '\\n[onnxruntime loaded]\\n' : '\\n[onnxruntime not loaded]\\n'));`,
  );
  return file;
}

test('onnxruntime writes telemetry when nothing disables it (the control for the tests below)', () => {
  const s = sandbox();
  const r = spawnSync(
    process.execPath,
    ['-e', `require('onnxruntime-node').InferenceSession.create(new Uint8Array([8, 1])).catch(() => undefined)`],
    { cwd: root, env: s.env, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const left = [...filesUnder(s.home), ...filesUnder(s.temp)];
  assert.ok(
    left.some((f) => f.endsWith('onnxruntime.db')) && left.some((f) => /mat-debug-\d+\.log$/.test(f)),
    `onnxruntime-node without ORT_DISABLE_TELEMETRY wrote ${left.join(', ') || 'nothing'}`,
  );
});

test('a CLI run that uses onnxruntime in the main thread and in workers writes no telemetry and no litter', () => {
  const s = sandbox();
  const work = join(s.base, 'work');
  mkdirSync(work);
  const r = rng(4);
  const ckpt = join(work, 'model.safetensors');
  writeSafetensors(ckpt, [
    f32Tensor(
      'model.layers.0.mlp.up_proj.weight',
      [96, 64],
      Array.from({ length: 96 * 64 }, () => r()),
    ),
    f32Tensor(
      'model.layers.0.mlp.down_proj.weight',
      [64, 96],
      Array.from({ length: 96 * 64 }, () => r()),
    ),
  ]);
  const trace = tracer(s.base);
  const inspect = spawnSync(
    process.execPath,
    ['-r', trace, cliScript(), 'inspect', ckpt, '--jobs', '2', '--rank', '4', '--json'],
    { cwd: work, env: s.env, encoding: 'utf8' },
  );
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.equal(inspect.stdout.trim().split('\n').length, 2);

  const { path: model } = convModel();
  const images = join(import.meta.dirname, '../../fixtures/ocr-lines/calibration');
  const calibrate = spawnSync(
    process.execPath,
    [
      '-r',
      trace,
      cliScript(),
      'calibrate',
      model,
      '--data',
      images,
      '--max-samples',
      '4',
      '--out',
      join(work, 's.safetensors'),
    ],
    { cwd: work, env: s.env, encoding: 'utf8' },
  );
  assert.equal(calibrate.status, 0, calibrate.stderr);
  assert.match(calibrate.stderr, /\[onnxruntime loaded\]/, 'the check is meaningful: onnxruntime ran');
  assert.deepEqual(filesUnder(s.home), [], 'nothing in HOME (no ~/.cache/Microsoft/DeveloperTools)');
  assert.deepEqual(filesUnder(s.temp), [], 'nothing in TMPDIR (no mat-debug-<pid>.log, no .ses)');
});

test('commands that run no graph never load onnxruntime', () => {
  const s = sandbox();
  const trace = tracer(s.base);
  const ckpt = join(root, 'test/fixtures/readers/llama-sharded');
  for (const args of [
    ['layers', ckpt],
    ['layers', ckpt, '--check', '--json'],
    ['--help'],
    ['export', ckpt, '--out', join(ckpt, 'model-00001-of-00004.safetensors')],
    ['inspect', ckpt, '--rank', 'many'],
  ]) {
    const r = spawnSync(process.execPath, ['-r', trace, cliScript(), ...args], { env: s.env, encoding: 'utf8' });
    assert.match(r.stderr, /\[onnxruntime not loaded\]/, `quant-lens ${args.join(' ')} loaded onnxruntime`);
  }
  assert.deepEqual([...filesUnder(s.home), ...filesUnder(s.temp)], []);
});
