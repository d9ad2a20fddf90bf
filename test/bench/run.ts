/**
 * `npm run bench`: every figure of the interactive-scale acceptance (issue 10), each against its
 * reference measured alone in the same run.
 *
 *   npx tsx test/bench/run.ts [--pairs 3] [--sizes 4096x4096,14336x4096] [--sweep-blocks 1]
 *                             [--only layers|sweep] [--dir /tmp/ql-bench]
 *
 * For each layer size (E = W − MXINT4(W), W seeded normal·0.02, F32 safetensors):
 *  - numpy: eigvalsh(EᵀE) with the float64 Gram, Gram (and the widening) included, in its own
 *    python process with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (they slow a current numpy);
 *  - first numbers: `quant-lens inspect --method lqer --rank 32 --max-rank 64 --no-spectra --json`,
 *    the layer's timeMs (reading the weight included, process start-up not);
 *  - full spectrum: an LQER analysis in its own process, its Gram + spectrum stages;
 *  - L²QER pair: an L²QER analysis (plain and scaled spectra), its Gram + spectrum stages. With the
 *    helper thread, E's reduction also overlaps the factors and curves stages, so the whole
 *    analysis (read, quantize, factors, curves and both spectra) is printed beside it.
 * The sweep: TinyLlama-shaped blocks (7 layers each), L²QER rank 32 with both spectra, against the
 * torch reference (svd of the scaled error + svdvals of E per layer), compute time of each side
 * (their per-layer loops) and process wall time, and Quant Lens's peak RSS.
 *
 * Quant Lens runs with the environment the CLI gives itself (src/cli/hugePages.ts: glibc's malloc
 * asking for transparent huge pages where the kernel grants them on request); numpy asks for huge
 * pages for its own arrays. The torch sweep reference runs as it is and, a second time, with the
 * CLI's tunable: both ratios are printed.
 *
 * Every measurement runs in its own process, one at a time, reference and product interleaved in
 * `--pairs` rounds (alternating which goes first); medians are reported. The load average is
 * printed before each run and a loud warning marks any above 0.5: figures taken beside other jobs
 * are not comparable (a reference slows down more under contention than the product does).
 * Run it through /work/bin/heavy on a shared machine.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeStatsFile } from '../../src/engine/calibration/statsFile';
import { mulberry32 } from '../../src/engine/random';
import { f32Bytes, writeSafetensorsFile } from '../../src/engine/writers/safetensorsWriter';
import { scratchOutput } from '../helpers/output';
import { generateTinyLlama, linearShapes } from './tinyllama';
import { cliTunables, peakRssWrapper, productEnv, sweepArgs } from './sweepProduct';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '3' },
    sizes: { type: 'string', default: '4096x4096,14336x4096' },
    'sweep-blocks': { type: 'string', default: '1' },
    only: { type: 'string' },
    dir: { type: 'string', default: '/tmp/ql-bench' },
  },
});
const root = join(import.meta.dirname, '../..');
const pairs = Math.max(1, Number(values.pairs));
const dir = values.dir;
const LOAD_LIMIT = 0.5;
/** Share of the CPUs others may use in the second before a run (the bench itself is idle then). */
const BUSY_LIMIT = 0.1;
const LAYER = 'model.layers.0.mlp.proj.weight';
const loads: { label: string; load: number; busy: number }[] = [];

/** [busy, total] jiffies of all CPUs, from /proc/stat's first line. */
function cpuTimes(): [number, number] {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return [total - idle, total];
}

/**
 * Before each run: the load average, and the share of the CPUs busy during one second in which the
 * bench runs nothing. Back-to-back runs keep the 1-minute load average near 2 on a 2-core machine
 * by themselves (it decays over minutes), so the load average cannot tell another job from the
 * bench's own last run; the busy share can: it is near 0 unless something else is running.
 */
async function load(label: string): Promise<number> {
  const [b0, t0] = cpuTimes();
  await new Promise((r) => setTimeout(r, 1000));
  const [b1, t1] = cpuTimes();
  const busy = t1 > t0 ? (b1 - b0) / (t1 - t0) : 0;
  const [one, five, fifteen] = loadavg() as [number, number, number];
  loads.push({ label, load: one, busy });
  const line = `  [load ${one.toFixed(2)} ${five.toFixed(2)} ${fifteen.toFixed(2)}; others busy ${(100 * busy).toFixed(0)} %] ${label}`;
  if (busy > BUSY_LIMIT) {
    console.log(
      `${line}\n  !!!!!!!! ${(100 * busy).toFixed(0)} % OF THE CPUs BUSY BEFORE THIS RUN: another job is running; this figure is NOT a quiet-machine measurement !!!!!!!!`,
    );
  } else if (one > LOAD_LIMIT) {
    console.log(
      `${line}\n  (load average ${one.toFixed(2)} > ${LOAD_LIMIT}: left by the previous runs, the CPUs are idle now)`,
    );
  } else console.log(line);
  return one;
}

interface Run {
  seconds: number;
  stdout: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`));
      else resolve({ seconds: (performance.now() - t0) / 1000, stdout });
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (s: number) => `${s.toFixed(2)} s`;
const numpyEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
};

async function layerFixture(out: number, nIn: number): Promise<{ ckpt: string; stats: string }> {
  const ckpt = join(dir, `w${out}x${nIn}.safetensors`);
  const stats = join(dir, `s${out}x${nIn}.safetensors`);
  if (existsSync(ckpt) && existsSync(stats)) return { ckpt, stats };
  const r = mulberry32(out * 31 + nIn);
  const w = new Float32Array(out * nIn);
  for (let i = 0; i < w.length; i += 2) {
    const rad = Math.sqrt(-2 * Math.log(Math.max(r(), 1e-300))) * 0.02;
    const t = 2 * Math.PI * r();
    w[i] = rad * Math.cos(t);
    if (i + 1 < w.length) w[i + 1] = rad * Math.sin(t);
  }
  await writeSafetensorsFile(await scratchOutput(ckpt), [
    { name: LAYER, dtype: 'F32', shape: [out, nIn], bytes: () => f32Bytes(w) },
  ]);
  // 20 outlier input channels (mean |x| ×30), as real LLM activations have.
  const meanAbs = new Float32Array(nIn);
  for (let i = 0; i < nIn; i++) meanAbs[i] = 0.5 + r() + (i % Math.floor(nIn / 20) === 7 ? 30 : 0);
  const rms = Float32Array.from(meanAbs, (v) => 1.25 * v);
  await writeStatsFile(
    await scratchOutput(stats),
    new Map([[LAYER, { channels: nIn, tokens: 1000, batches: 1, meanAbs, rms }]]),
  );
  return { ckpt, stats };
}

function readF64(path: string): Float64Array {
  const b = readFileSync(path);
  return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

function accuracy(ours: Float64Array, ref: Float64Array): { topRel: number; allAbs: number } {
  let topRel = 0;
  for (let i = 0; i < Math.min(64, ref.length); i++) topRel = Math.max(topRel, Math.abs(ours[i]! - ref[i]!) / ref[i]!);
  let allAbs = 0;
  for (let i = 0; i < ref.length; i++) allAbs = Math.max(allAbs, Math.abs(ours[i]! - ref[i]!));
  return { topRel, allAbs: allAbs / ref[0]! };
}

interface Figure {
  what: string;
  value: string;
  target: string;
  met: boolean;
  load: string;
}
const figures: Figure[] = [];
function figure(what: string, value: string, target: string, met: boolean, from: number): void {
  const ls = loads.slice(from).map((l) => l.load);
  const busy = Math.max(...loads.slice(from).map((l) => l.busy));
  figures.push({
    what,
    value,
    target,
    met,
    load: `${Math.min(...ls).toFixed(2)}–${Math.max(...ls).toFixed(2)}, others ≤ ${(100 * busy).toFixed(0)} %`,
  });
}

async function layers(out: number, nIn: number): Promise<void> {
  const label = `${out}×${nIn}`;
  console.log(`\n== ${label} layer: references and Quant Lens, ${pairs} interleaved rounds`);
  const f = await layerFixture(out, nIn);
  const from = loads.length;
  const prefix = join(dir, `acc-${out}x${nIn}`);
  const numpy: number[] = [];
  const first: number[] = [];
  const spectrum: number[] = [];
  const pair: number[] = [];
  const pairWhole: number[] = [];
  const cli = join(root, 'dist/cli.js');
  const child = join(root, 'test/bench/layer-child.ts');
  const tsx = join(root, 'node_modules/.bin/tsx');
  let blas = '';
  // The error and scale the references read come from the product's own quantizer.
  await run(tsx, [child, f.ckpt, LAYER, f.stats, 'l2qer', prefix], productEnv());
  const ours = {
    first: async () => {
      await load(`${label} first numbers (inspect --no-spectra, rank 32, max rank 64)`);
      const r = await run(process.execPath, [
        cli,
        'inspect',
        f.ckpt,
        '--method',
        'lqer',
        '--rank',
        '32',
        '--max-rank',
        '64',
        '--no-spectra',
        '--json',
      ]);
      const ms = (JSON.parse(r.stdout.split('\n')[0]!) as { timeMs: number }).timeMs;
      first.push(ms / 1000);
      console.log(`    ${fmt(ms / 1000)} (process ${fmt(r.seconds)})`);
    },
    spectrum: async () => {
      await load(`${label} full spectrum (LQER analysis: Gram + spectrum stages)`);
      const r = JSON.parse((await run(tsx, [child, f.ckpt, LAYER, f.stats, 'lqer'], productEnv())).stdout) as {
        spectraMs: number;
        totalMs: number;
      };
      spectrum.push(r.spectraMs / 1000);
      console.log(`    ${fmt(r.spectraMs / 1000)} (whole analysis ${fmt(r.totalMs / 1000)})`);
    },
    pair: async () => {
      await load(`${label} L²QER pair (both spectra)`);
      const r = JSON.parse((await run(tsx, [child, f.ckpt, LAYER, f.stats, 'l2qer'], productEnv())).stdout) as {
        spectraMs: number;
        totalMs: number;
      };
      pair.push(r.spectraMs / 1000);
      pairWhole.push(r.totalMs / 1000);
      console.log(`    ${fmt(r.spectraMs / 1000)} (whole analysis ${fmt(r.totalMs / 1000)})`);
    },
  };
  const reference = async (i: number) => {
    await load(`${label} numpy eigvalsh(EᵀE), float64 Gram included`);
    const args = [
      join(root, 'test/bench/eigvalsh_reference.py'),
      `${prefix}.error.bin`,
      String(out),
      String(nIn),
      `${prefix}.np`,
    ];
    if (i === 0) args.push(`${prefix}.scale.bin`);
    await run('python3', args, numpyEnv());
    const r = JSON.parse(readFileSync(`${prefix}.np.json`, 'utf8')) as { seconds: number; blas: string; numpy: string };
    blas = `numpy ${r.numpy}, ${r.blas}`;
    numpy.push(r.seconds);
    console.log(`    ${fmt(r.seconds)}`);
  };
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) await reference(i);
    await ours.first();
    await ours.spectrum();
    await ours.pair();
    if (i % 2 === 1) await reference(i);
  }
  const np = median(numpy);
  console.log(`  reference: ${blas}`);
  const acc = accuracy(readF64(`${prefix}.plain.bin`), readF64(`${prefix}.np.sv.bin`));
  const accS = accuracy(readF64(`${prefix}.scaled.bin`), readF64(`${prefix}.np.scaled.bin`));
  figure(`${label} numpy eigvalsh(EᵀE) (reference)`, fmt(np), '—', true, from);
  figure(
    `${label} first numbers`,
    `${fmt(median(first))} = ${(median(first) / np).toFixed(2)}× numpy`,
    '≤ 0.3×',
    median(first) <= 0.3 * np,
    from,
  );
  figure(
    `${label} full spectrum`,
    `${fmt(median(spectrum))}: ${(np / median(spectrum)).toFixed(2)}× numpy's speed`,
    '≥ 1.0×',
    np / median(spectrum) >= 1,
    from,
  );
  figure(
    `${label} L²QER pair`,
    `${fmt(median(pair))} = ${(median(pair) / np).toFixed(2)}× numpy`,
    '≤ 2×',
    median(pair) <= 2 * np,
    from,
  );
  figure(
    `${label} L²QER layer, whole analysis`,
    `${fmt(median(pairWhole))} = ${(median(pairWhole) / np).toFixed(2)}× numpy`,
    '—',
    true,
    from,
  );
  figure(
    `${label} accuracy σ(E)`,
    `top 64 ${acc.topRel.toExponential(1)} rel, all ${acc.allAbs.toExponential(1)}·σ₁`,
    '1e-4, 1e-3',
    acc.topRel <= 1e-4 && acc.allAbs <= 1e-3,
    from,
  );
  figure(
    `${label} accuracy σ(E·S)`,
    `top 64 ${accS.topRel.toExponential(1)} rel, all ${accS.allAbs.toExponential(1)}·σ₁`,
    '1e-4, 1e-3',
    accS.topRel <= 1e-4 && accS.allAbs <= 1e-3,
    from,
  );
}

async function sweep(blocks: number): Promise<void> {
  const n = 7 * blocks;
  console.log(
    `\n== TinyLlama-shaped sweep: ${blocks} block(s), ${n} layers, L²QER rank 32, both spectra, ${pairs} interleaved rounds`,
  );
  const { ckpt, stats } = await generateTinyLlama(join(dir, 'tinyllama'));
  const from = loads.length;
  const wrapper = peakRssWrapper(dir);
  const layers = linearShapes()
    .slice(0, n)
    .map((l) => l.name);
  const ref = { compute: [] as number[], wall: [] as number[] };
  // The reference as it runs by default, and with the malloc tunable the CLI gives itself (torch's
  // CPU allocator goes through glibc's malloc too): the second keeps the comparison like for like.
  const refTuned = { compute: [] as number[], wall: [] as number[] };
  const ours = { compute: [] as number[], wall: [] as number[], rss: [] as number[] };
  const referenceRun = async (into: typeof ref, tuned: boolean) => {
    await load(`sweep: torch reference (svd of S·Eᵀ + svdvals(E) per layer)${tuned ? `, ${cliTunables}` : ''}`);
    const r = await run(
      'python3',
      [join(root, 'test/bench/sweep_reference.py'), ckpt, stats, String(n)],
      tuned ? productEnv() : process.env,
    );
    const compute = Number(/COMPUTE_S=([\d.]+)/.exec(r.stdout)?.[1]);
    into.compute.push(compute);
    into.wall.push(r.seconds);
    console.log(`    ${fmt(compute)} in its layer loop (process ${fmt(r.seconds)})`);
  };
  const reference = async () => {
    await referenceRun(ref, false);
    if (cliTunables) await referenceRun(refTuned, true);
  };
  const product = async () => {
    await load('sweep: quant-lens inspect --method l2qer --rank 32 --json');
    // The wrapper calls the CLI's main() in its own process, so it gets the CLI's environment here.
    const r = await run(process.execPath, sweepArgs(wrapper, ckpt, stats, layers), productEnv());
    const records = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { timeMs: number });
    if (records.length !== n) throw new Error(`inspect answered ${records.length} of ${n} layers`);
    const compute = Number(/LOOP_MS=([\d.]+)/.exec(r.stdout)?.[1]) / 1000;
    if (!Number.isFinite(compute)) throw new Error('inspect printed no LOOP_MS');
    const rss = Number(/PEAK_RSS_KB=(\d+)/.exec(r.stdout)?.[1]) / 1024;
    ours.compute.push(compute);
    ours.wall.push(r.seconds);
    ours.rss.push(rss);
    console.log(`    ${fmt(compute)} in its layer loop (process ${fmt(r.seconds)}), peak RSS ${rss.toFixed(0)} MB`);
  };
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) await reference();
    await product();
    if (i % 2 === 1) await reference();
  }
  const ratio = median(ref.compute) / median(ours.compute);
  const wallRatio = median(ref.wall) / median(ours.wall);
  figure(
    `sweep ${n} layers: torch reference (compute / process)`,
    `${fmt(median(ref.compute))} / ${fmt(median(ref.wall))}`,
    '—',
    true,
    from,
  );
  figure(
    `sweep ${n} layers: Quant Lens (compute / process)`,
    `${fmt(median(ours.compute))} / ${fmt(median(ours.wall))}`,
    '—',
    true,
    from,
  );
  figure(
    'sweep speed-up (compute; process wall)',
    `${ratio.toFixed(2)}×; ${wallRatio.toFixed(2)}×`,
    '≥ 5×',
    ratio >= 5,
    from,
  );
  if (cliTunables) {
    const tuned = median(refTuned.compute) / median(ours.compute);
    figure(
      `sweep: torch reference with ${cliTunables} (compute / process)`,
      `${fmt(median(refTuned.compute))} / ${fmt(median(refTuned.wall))}`,
      '—',
      true,
      from,
    );
    figure(
      'sweep speed-up against that (compute; process wall)',
      `${tuned.toFixed(2)}×; ${(median(refTuned.wall) / median(ours.wall)).toFixed(2)}×`,
      '≥ 5×',
      tuned >= 5,
      from,
    );
  }
  figure('sweep peak RSS', `${Math.max(...ours.rss).toFixed(0)} MB`, '< 2048 MB', Math.max(...ours.rss) < 2048, from);
}

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  console.log(`Quant Lens benchmark (issue 10): ${pairs} interleaved rounds, medians; fixtures in ${dir}`);
  await run(process.execPath, [join(root, 'esbuild.mjs')]);
  if (values.only !== 'sweep') {
    for (const size of values.sizes.split(',')) {
      const [out, nIn] = size.split('x').map(Number) as [number, number];
      await layers(out, nIn);
    }
  }
  if (values.only !== 'layers') await sweep(Math.max(1, Number(values['sweep-blocks'])));
  console.log(
    '\n== Summary (load: range of the 1-minute load average before the runs of each line, and the most the CPUs were busy with other jobs)',
  );
  const w = Math.max(...figures.map((f) => f.what.length));
  for (const f of figures) {
    const verdict = f.target === '—' ? '' : f.met ? 'met' : 'NOT MET';
    console.log(
      `  ${f.what.padEnd(w)}  ${f.value.padEnd(44)} ${f.target.padEnd(11)} ${verdict.padEnd(8)} load ${f.load}`,
    );
  }
  const worst = Math.max(...loads.map((l) => l.busy));
  if (worst > BUSY_LIMIT) {
    console.log(
      `\n  !!!!!!!! Other jobs used up to ${(100 * worst).toFixed(0)} % of the CPUs before a run: these are NOT quiet-machine figures. !!!!!!!!`,
    );
  } else {
    console.log(
      `\n  Quiet machine: before every run the CPUs were at most ${(100 * worst).toFixed(0)} % busy with anything else (load averages include this bench's own previous runs).`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
