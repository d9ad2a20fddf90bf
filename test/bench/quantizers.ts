// Times fakeQuantize on a 4096×4096 float32 matrix for each format.
// Usage: npx tsx test/bench/quantizers.ts [rows] [cols] [repeats]
import { fakeQuantize, formatLabel, parseFormat } from '../../src/engine/quantizers';

const rows = Number(process.argv[2] ?? 4096);
const cols = Number(process.argv[3] ?? 4096);
const repeats = Number(process.argv[4] ?? 5);

// Weight-like values: normal, σ = 0.02, from a fixed-seed LCG + Box–Muller.
const data = new Float32Array(rows * cols);
let seed = 12345;
const uniform = (): number => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return (seed + 0.5) / 4294967296;
};
for (let i = 0; i < data.length; i++) {
  data[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()) * 0.02;
}

const out = new Float32Array(data.length);
const formats = [
  'mxint4',
  'mxint8',
  'mxint4:block=16x1',
  'mxint4:qera',
  'int4:g128',
  'int4:g128:sym',
  'mxfp4',
  'mxfp8',
  'nvfp4',
  'fp8',
];
// CPU time of this (single-threaded) process is reported next to wall time: on a shared machine
// wall time mostly measures the neighbours.
console.log(`fakeQuantize ${rows}×${cols}, best and median of ${repeats} (after one warm-up run)`);
for (const text of formats) {
  const format = parseFormat(text);
  fakeQuantize(data, rows, cols, format, { out });
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fakeQuantize(data, rows, cols, format, { out });
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const best = (xs: number[]): number => Math.min(...xs);
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const ms = (v: number): string => `${v.toFixed(1).padStart(6)} ms`;
  console.log(
    `${text.padEnd(18)} ${formatLabel(format).padEnd(34)} wall best ${ms(best(wall))} median ${ms(median(wall))}` +
      `  cpu best ${ms(best(cpu))} (${((best(cpu) * 1e6) / data.length).toFixed(2)} ns/element)`,
  );
}
