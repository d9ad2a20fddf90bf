/**
 * The deployment figure of issue 11: for the tiny Llama fixture at llama.cpp's q4_k and q3_k,
 * perplexity and KL divergence from the float model of RTN and of L²QER at ranks 8/16/32, measured
 * twice —
 *  - by Quant Lens (`eval --task kld --sweep`: the ONNX graph with each weight replaced by Ŵ), and
 *  - on what is deployed: `export --to hf` folders loaded by transformers with the PEFT LoRA adapter
 *    applied (test/python/check_kld.py),
 * on the held-out eval.txt (non-overlapping 128-token windows). L²QER is calibrated on
 * calibration.txt first. Needs Python with torch, transformers, peft, tokenizers, safetensors.
 *
 *   npx tsx test/bench/deploy-figure.ts [--formats q4_k,q3_k] [--ranks 8,16,32] [--max-windows N] [--json out.json]
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable } from '../../src/cli/table';
import { formatKld } from '../../src/engine/evaluation/sweepTable';
import { cliScript } from '../helpers/workerBundle';
import { PYTHON, PYTHON_TESTS, pythonMissing } from '../helpers/python';

const ROOT = join(import.meta.dirname, '../..');
const LM = join(ROOT, 'test/fixtures/models/tiny-llama');

const { values } = parseArgs({
  options: {
    formats: { type: 'string' },
    ranks: { type: 'string' },
    'max-windows': { type: 'string' },
    json: { type: 'string' },
  },
});
const formats = (values.formats ?? 'q4_k,q3_k').split(',');
const ranks = (values.ranks ?? '8,16,32').split(',').map(Number);
const maxWindows = values['max-windows'];

let exportNotes = false;
const notesSeen = new Set<string>();

function run(cmd: string, args: string[]): string {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  // llama-quantize's fall-backs and the like: said once under the table.
  if (exportNotes) for (const m of r.stderr.matchAll(/^note: (.*fall.*)$/gm)) notesSeen.add(m[1]!);
  process.stderr.write(`  ${((Date.now() - t0) / 1000).toFixed(1)} s  ${args.slice(1, 3).join(' ')} …\n`);
  return r.stdout;
}

const cli = (args: string[]) => run(process.execPath, [cliScript(), ...args]);

interface Kld {
  mean: number;
  median: number;
  p99: number;
  p999: number;
  sameTop: number;
  perplexity: number;
  floatPerplexity: number;
  tokens: number;
}

const missing = pythonMissing(['torch', 'transformers', 'peft', 'tokenizers', 'safetensors']);
if (missing) {
  process.stderr.write(`${missing}\n`);
  process.exit(2);
}
process.stderr.write(
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}\n`,
);
const dir = mkdtempSync(join(tmpdir(), 'ql-deploy-figure-'));
const stats = join(dir, 'stats.safetensors');
cli([
  'calibrate',
  join(LM, 'model.onnx'),
  '--data',
  join(LM, 'calibration.txt'),
  '--tokenizer',
  join(LM, 'tokenizer.json'),
  '--out',
  stats,
]);

const windowArgs = maxWindows ? ['--max-samples', maxWindows] : [];
const sweep = JSON.parse(
  cli([
    'eval',
    join(LM, 'model.onnx'),
    '--data',
    join(LM, 'eval.txt'),
    '--tokenizer',
    join(LM, 'tokenizer.json'),
    '--task',
    'kld',
    '--sweep',
    '--methods',
    'rtn,l2qer',
    '--ranks',
    ranks.join(','),
    '--formats',
    formats.join(','),
    '--stats',
    stats,
    '--batch-size',
    '16',
    '--json',
    ...windowArgs,
  ]),
) as { float: { kld: Kld }; rows: { method: string; weightFormat: string; rank: number; result: { kld: Kld } }[] };

const configs = formats.flatMap((format) => [
  { format, method: 'rtn', rank: 0 },
  ...ranks.map((rank) => ({ format, method: 'l2qer', rank })),
]);
const folders = configs.map((c) => {
  const out = join(dir, `${c.format}-${c.method}-${c.rank}`);
  exportNotes = true;
  cli([
    'export',
    join(LM, 'model.safetensors'),
    '--to',
    'hf',
    '--format',
    c.format,
    '--method',
    c.method,
    '--rank',
    String(c.rank),
    '--calib',
    stats,
    '--out',
    out,
  ]);
  return out;
});
const py = spawnSync(
  PYTHON,
  [
    join(PYTHON_TESTS, 'check_kld.py'),
    '--source',
    LM,
    '--text',
    join(LM, 'eval.txt'),
    ...(maxWindows ? ['--max-windows', maxWindows] : []),
    ...folders.flatMap((f) => ['--hf', f]),
  ],
  { encoding: 'utf8', maxBuffer: 64 << 20 },
);
if (py.status !== 0) throw new Error(`check_kld.py exited ${py.status}:\n${py.stderr}`);
const lines = py.stdout.trim().split('\n');
const deployed = JSON.parse(lines[lines.length - 1]!) as {
  mean: number;
  median: number;
  p99: number;
  p999: number;
  same_top: number;
  ppl: number;
  ppl_float: number;
  tokens: number;
}[];

const rows = configs.map((c, i) => {
  const ql = sweep.rows.find((r) => r.weightFormat === c.format && r.method === c.method && r.rank === c.rank)!.result
    .kld;
  const d = deployed[i]!;
  return [
    c.format,
    c.method === 'rtn' ? 'RTN' : 'L²QER',
    c.rank ? String(c.rank) : '—',
    ql.perplexity.toFixed(3),
    d.ppl.toFixed(3),
    formatKld(ql.mean),
    formatKld(d.mean),
    formatKld(d.median),
    formatKld(d.p99),
    formatKld(d.p999),
    (100 * d.same_top).toFixed(2),
  ];
});
const float = sweep.float.kld;
process.stdout.write(
  `tiny Llama (test/fixtures/models/tiny-llama), eval.txt: ${float.tokens} predicted tokens, float perplexity ${float.perplexity.toFixed(3)}\n` +
    `"Quant Lens": eval --task kld (ONNX graph with Ŵ); "HF+PEFT": export --to hf loaded by transformers with the LoRA adapter\n\n` +
    formatTable(
      [
        'format',
        'method',
        'rank',
        'PPL Quant Lens',
        'PPL HF+PEFT',
        'KLD Quant Lens',
        'KLD HF+PEFT',
        'median',
        'p99',
        'p99.9',
        'same top %',
      ],
      rows,
    ) +
    '\n' +
    [...notesSeen].map((n) => `note: ${n}\n`).join(''),
);
if (values.json) writeFileSync(values.json, JSON.stringify({ configs, sweep, deployed }, null, 1));
