// `npm test`: every check, in order, stopping at the first failure, with the time of each step.
// `npm run check` is the quick inner loop (the first three steps); set QUANT_LENS_SKIP_E2E=1 to
// leave the end-to-end suite out of a local run (CI never does).
import { spawnSync } from 'node:child_process';

const steps = [
  ['typecheck', 'typecheck'],
  ['lint', 'lint'],
  ['unit tests', 'test:unit'],
  // A real single-node Slurm cluster (root + slurm-wlm + munge; skips loudly without them).
  ['Slurm job array', 'test:slurm'],
  ['e2e (code-server + Chromium)', 'test:e2e'],
  ['extension-host suite', 'test:exthost'],
];

const npm = process.env.npm_execpath;
const timings = [];
let failed;
for (const [label, script] of steps) {
  console.log(`\n=== [test] ${label}: npm run ${script}`);
  const t0 = Date.now();
  // npm_execpath is the npm that runs this script; falling back to `npm` on PATH.
  const r = npm
    ? spawnSync(process.execPath, [npm, 'run', '--silent', script], { stdio: 'inherit' })
    : spawnSync('npm', ['run', '--silent', script], { stdio: 'inherit', shell: process.platform === 'win32' });
  timings.push([label, (Date.now() - t0) / 1000, r.status === 0]);
  if (r.status !== 0) {
    failed = `${label} (exit ${r.status ?? r.signal})`;
    break;
  }
}

console.log('\n=== [test] step timings');
for (const [label, s, ok] of timings)
  console.log(`  ${label.padEnd(30)} ${s.toFixed(1).padStart(7)} s${ok ? '' : '  FAILED'}`);
if (failed) {
  console.log(`=== [test] FAILED: ${failed}`);
  process.exit(1);
}
console.log('=== [test] all steps passed');
