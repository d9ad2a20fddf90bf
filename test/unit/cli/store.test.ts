import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliScript } from '../../helpers/workerBundle';
import { llamaLayerShapes, writeLlamaCheckpoint, writeLlamaStats } from '../../helpers/llamaFixture';
import { decodeEntry } from '../../../src/engine/store/codec';

const LAYERS = llamaLayerShapes({ blocks: 3 }).length;

const ARRAY_VARS = ['SLURM_ARRAY_TASK_ID', 'SLURM_ARRAY_TASK_COUNT', 'SLURM_ARRAY_TASK_MIN', 'SLURM_ARRAY_TASK_MAX'];

function run(args: string[], env: Record<string, string> = {}) {
  // Outside any job array, whatever runs the tests.
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !ARRAY_VARS.includes(k) && k !== 'JOB_COMPLETION_INDEX'),
  );
  const r = spawnSync(process.execPath, [cliScript(), ...args], {
    encoding: 'utf8',
    env: { ...base, ...env },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function runAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [cliScript(), ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** JSON Lines by layer name, without the fields that measure this machine's time. */
function records(stdout: string): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const line of stdout.trim().split('\n')) {
    const o = JSON.parse(line) as Record<string, unknown>;
    delete o.timeMs;
    delete o.stageMs;
    out.set(o.name as string, o);
  }
  return out;
}

async function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'ql-cli-store-'));
  const ckpt = writeLlamaCheckpoint(dir, { blocks: 3 });
  const calib = await writeLlamaStats(dir, { blocks: 3 });
  return { dir, ckpt, calib, store: join(dir, 'store') };
}

function entries(store: string): string[] {
  const dir = join(store, 'results');
  return readdirSync(dir).flatMap((d) => readdirSync(join(dir, d)).map((f) => join(dir, d, f)));
}

test('inspect --store: the second run answers every layer from the store and prints the same', async () => {
  const { ckpt, calib, store } = await fixture();
  const args = ['inspect', ckpt, '--calib', calib, '--json', '--rank', '8', '--max-rank', '16', '--store', store];
  const first = run(args);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, new RegExp(`0 layers from the store, ${LAYERS} computed`));
  const second = run(args);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, new RegExp(`${LAYERS} layers from the store, 0 computed`));
  // Byte for byte, timeMs included: it is the time the analysis took when it was computed.
  assert.equal(second.stdout, first.stdout);
  // And the same numbers as a run without any store.
  const plain = run(args.slice(0, -2));
  assert.deepEqual(records(second.stdout), records(plain.stdout));
  // The table output too.
  const table = run(['inspect', ckpt, '--calib', calib, '--store', store, '--rank', '8', '--max-rank', '16']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stderr, new RegExp(`${LAYERS} layers from the store`));
});

test('--shard i/N: the shards cover every layer once, and the whole inspect from the store equals one process', async () => {
  const { ckpt, calib, store } = await fixture();
  const base = ['inspect', ckpt, '--calib', calib, '--json', '--rank', '8', '--max-rank', '16'];
  const single = records(run(base).stdout);
  const seen: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = run([...base, '--store', store, '--shard', `${i}/3`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`shard ${i}/3: \\d+ of ${LAYERS} layers`));
    seen.push(...records(r.stdout).keys());
  }
  assert.equal(seen.length, LAYERS);
  assert.deepEqual(new Set(seen), new Set(single.keys()));
  const merged = run([...base, '--store', store]);
  assert.match(merged.stderr, new RegExp(`${LAYERS} layers from the store, 0 computed`));
  assert.deepEqual(records(merged.stdout), single);
  assert.deepEqual([...records(merged.stdout).keys()], [...single.keys()], 'in the checkpoint order');
});

test('--shard auto takes the Slurm array task; --shard and --store are checked before any work', async () => {
  const { ckpt, store, dir } = await fixture();
  const r = run(['inspect', ckpt, '--json', '--store', store, '--shard', 'auto', '--no-spectra'], {
    SLURM_ARRAY_TASK_ID: '1',
    SLURM_ARRAY_TASK_COUNT: '2',
    SLURM_ARRAY_TASK_MIN: '0',
    SLURM_ARRAY_TASK_MAX: '1',
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /shard 1\/2:/);
  const k8s = run(['inspect', ckpt, '--json', '--store', store, '--shard', 'auto/2', '--no-spectra'], {
    JOB_COMPLETION_INDEX: '0',
  });
  assert.match(k8s.stderr, /shard 0\/2:/);
  assert.equal(records(r.stdout).size + records(k8s.stdout).size, LAYERS);
  for (const [args, why] of [
    [['--shard', '0/2'], /--shard writes its layers into a shared result store: give --store/],
    [['--store', store, '--shard', '2/2'], /--shard i must be between 0 and 1/],
    [['--store', store, '--shard', 'auto'], /--shard auto needs SLURM_ARRAY_TASK_ID/],
    [['--store', ckpt], /--store names an input of this command/],
    [['--store', join(dir, 'config.json')], /--store must be a folder, this is a file/],
    [['--store', dir], /not empty and is not a Quant Lens result store/],
    [['--store', ''], /--store needs a folder/],
  ] as const) {
    const bad = run(['inspect', ckpt, ...args]);
    assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
    assert.match(bad.stderr, why);
  }
});

test('two writers racing on one store: both succeed, a reader never sees a partial entry, all entries are whole', async () => {
  const { ckpt, calib, store } = await fixture();
  const args = ['inspect', ckpt, '--calib', calib, '--json', '--rank', '8', '--max-rank', '16', '--store', store];
  // Create the store first so that both writers and the reader race on entries, not on the marker.
  run(['inspect', ckpt, '--store', store, '--layer', 'model.layers.0.self_attn.k_proj.weight', '--no-spectra']);
  let reads = 0;
  let stop = false;
  const reader = (async () => {
    while (!stop) {
      try {
        for (const f of entries(store)) {
          const key = f.split('/').pop()!.replace('.qlr', '');
          if (!/^[0-9a-f]{64}$/.test(key)) continue; // a writer's temporary file
          decodeEntry(readFileSync(f), key); // throws on a partial or damaged entry
          reads++;
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const [a, b] = await Promise.all([runAsync(args), runAsync(args)]);
  stop = true;
  await reader;
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.ok(reads > 0);
  assert.deepEqual(records(a.stdout), records(b.stdout));
  for (const f of entries(store)) {
    assert.match(f, /[0-9a-f]{64}\.qlr$/, 'no temporary file left behind');
    decodeEntry(readFileSync(f), f.split('/').pop()!.replace('.qlr', ''));
  }
  const third = run(args);
  assert.match(third.stderr, new RegExp(`${LAYERS} layers from the store, 0 computed`));
  assert.deepEqual(records(third.stdout), records(a.stdout));
});

test('a corrupted store entry: a warning naming it, the layer recomputed, the output unchanged', async () => {
  const { ckpt, store } = await fixture();
  const args = ['inspect', ckpt, '--json', '--rank', '8', '--store', store];
  const first = run(args);
  const victim = entries(store)[0]!;
  const bytes = readFileSync(victim);
  bytes.fill(0, 100, 140);
  writeFileSync(victim, bytes);
  const second = run(args);
  assert.equal(second.code, 0, second.stderr);
  assert.match(
    second.stderr,
    new RegExp(`warning: ignoring corrupted store entry ${victim} \\(checksum mismatch\\); recomputing`),
  );
  assert.match(second.stderr, new RegExp(`${LAYERS - 1} layers from the store, 1 computed`));
  assert.deepEqual(records(second.stdout), records(first.stdout));
  const third = run(args);
  assert.doesNotMatch(third.stderr, /warning/);
  assert.match(third.stderr, new RegExp(`${LAYERS} layers from the store, 0 computed`));
});

test('allocate: --shard tasks fill the store with curves, the final allocate equals the single-process one', async () => {
  const { ckpt, calib, store } = await fixture();
  const common = ['allocate', ckpt, '--calib', calib, '--formats', 'mxint3,mxint4', '--rank', '8', '--max-rank', '16'];
  const single = run([...common, '--budget-bits', '4.6', '--json']);
  assert.equal(single.code, 0, single.stderr);
  for (let i = 0; i < 2; i++) {
    const r = run([...common, '--store', store, '--shard', `${i}/2`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`shard ${i}/2: curves of \\d+ of ${LAYERS} layers`));
    assert.equal(r.stdout, '', 'a shard allocates nothing');
  }
  const merged = run([...common, '--store', store, '--budget-bits', '4.6', '--json']);
  assert.equal(merged.code, 0, merged.stderr);
  assert.match(merged.stderr, new RegExp(`${2 * LAYERS} curves from the store, 0 computed`));
  assert.equal(merged.stdout, single.stdout);
  // inspect --no-spectra at the same settings reads the curves allocate stored.
  const inspect = run([
    'inspect',
    ckpt,
    '--calib',
    calib,
    '--rank',
    '8',
    '--max-rank',
    '16',
    '--no-spectra',
    '--store',
    store,
  ]);
  assert.match(inspect.stderr, new RegExp(`${LAYERS} layers from the store, 0 computed`));
});
