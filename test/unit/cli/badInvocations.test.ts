/**
 * Bad invocations of every command, as a careful user gets them wrong: outputs over inputs (the
 * checkpoint, a shard, the statistics, the recipe, the model, a data file), outputs that are not
 * regular files, existing and read-only outputs, missing folders, numbers out of range or
 * negative, unknown options and extra arguments, malformed statistics and recipes, evaluation data
 * without a dictionary, a model with a fixed batch dimension. Each one must end with exit code 2
 * and a one-line message naming the file or option, no stack trace, no file left behind, every
 * input byte-identical, within 10 s.
 *
 * The table runs through the CLI's `main` in this process (one process for all: fast); a sample of
 * rows runs through the built bundle as well, to check the real exit code and output, and the file
 * size limit (ulimit -f) can only be tried there.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../../src/cli/main';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { ActivationAccumulator } from '../../../src/engine/calibration/accumulator';
import { writeStatsFile } from '../../../src/engine/calibration/statsFile';
import { cliScript } from '../../helpers/workerBundle';
import { scratchOutput } from '../../helpers/output';
import { f32Tensor, writeSafetensors, type TestTensor } from '../../helpers/safetensorsWriter';
import { convModel, lmModel } from '../evaluation/smallGraphs';
import { buildModel, OnnxType } from '../../../src/engine/onnx/builder';
import { activations } from '../methods/helpers';

const FIXTURES = join(import.meta.dirname, '../../fixtures');
const TOKENIZER = join(FIXTURES, 'models/tiny-llama/tokenizer.json');
const TEXT = join(FIXTURES, 'models/tiny-llama/calibration.txt');
const Q = 'model.layers.0.self_attn.q_proj.weight';

/** Everything the bad invocations point at, in one folder (plus the shared text fixtures). */
interface Workspace {
  root: string;
  ckpt: string;
  index: string;
  shard: string;
  shardLink: string;
  stats: string;
  statsFor: Record<'nan' | 'negative' | 'asymmetric' | 'indefinite' | 'partial', string>;
  recipe: string;
  recipeFor: Record<'unknownLayer' | 'rank' | 'notJson' | 'method', string>;
  conv: string;
  images: string;
  lm: string;
  /** One MatMul with 2^20 input channels: a reservoir or a Gram for it exceeds any machine's memory. */
  wide: string;
  existing: string;
  readonly: string;
  fifo: string;
  folder: string;
  noLinear: string;
  /** One linear layer with a NaN and an infinite weight. */
  nanWeights: string;
}

function f64Tensor(name: string, shape: number[], values: ArrayLike<number>): TestTensor {
  return { name, dtype: 'F64', shape, bytes: new Uint8Array(Float64Array.from(values).buffer) };
}

const STATS_META = { format: 'quant-lens-stats', version: '1' };

/** A statistics file for q_proj (64 input channels) whose one named part is broken. */
function brokenStats(path: string, broken: { meanAbs?: number[]; rms?: number[]; gram?: number[] }): void {
  const ones = new Array(64).fill(1);
  const identity = Array.from({ length: 64 * 64 }, (_, i) => (i % 65 === 0 ? 1 : 0));
  writeSafetensors(
    path,
    [
      f32Tensor(`${Q}.act_mean_abs`, [64], broken.meanAbs ?? ones),
      f32Tensor(`${Q}.act_rms`, [64], broken.rms ?? ones),
      f64Tensor(`${Q}.act_gram`, [64, 64], broken.gram ?? identity),
    ],
    STATS_META,
  );
}

async function makeWorkspace(): Promise<Workspace> {
  const root = mkdtempSync(join(tmpdir(), 'ql-bad-'));
  const ckpt = join(root, 'llama');
  cpSync(join(FIXTURES, 'readers/llama-sharded'), ckpt, { recursive: true });
  const index = join(ckpt, 'model.safetensors.index.json');
  const shard = join(ckpt, 'model-00002-of-00004.safetensors');
  const shardLink = join(root, 'shard-link.safetensors');
  symlinkSync(shard, shardLink);

  const stats = join(root, 'stats.safetensors');
  const model = await openCheckpoint(ckpt);
  const map = new Map();
  for (const [i, l] of model.linearLayers.entries()) {
    const acc = new ActivationAccumulator(l.shape[1], { gram: true });
    acc.addBatch(activations(96, l.shape[1], i + 1), 96);
    map.set(l.name, acc.finish());
  }
  await model.close();
  await writeStatsFile(await scratchOutput(stats), map);
  const statsFor = {
    nan: join(root, 'nan.safetensors'),
    negative: join(root, 'negative.safetensors'),
    asymmetric: join(root, 'asymmetric.safetensors'),
    indefinite: join(root, 'indefinite.safetensors'),
    partial: join(root, 'partial.safetensors'),
  };
  brokenStats(statsFor.nan, { meanAbs: Array.from({ length: 64 }, (_, i) => (i === 3 ? NaN : 1)) });
  brokenStats(statsFor.negative, { rms: Array.from({ length: 64 }, (_, i) => (i === 5 ? -1 : 1)) });
  const asym: number[] = Array.from({ length: 64 * 64 }, (_, i) => (i % 65 === 0 ? 1 : 0));
  asym[1] = 0.5;
  asym[64] = -0.5;
  brokenStats(statsFor.asymmetric, { gram: asym });
  const indefinite: number[] = Array.from({ length: 64 * 64 }, (_, i) => (i % 65 === 0 ? 1 : 0));
  indefinite[2 * 64 + 3] = 2;
  indefinite[3 * 64 + 2] = 2;
  brokenStats(statsFor.indefinite, { gram: indefinite });
  brokenStats(statsFor.partial, {});

  const recipe = join(root, 'recipe.json');
  const recipeOf = (layers: Record<string, { format: string; rank: number }>, extra = {}) =>
    JSON.stringify({ kind: 'quant-lens-recipe', version: 1, layers, ...extra });
  writeFileSync(recipe, recipeOf({ [Q]: { format: 'mxint4', rank: 8 } }));
  const recipeFor = {
    unknownLayer: join(root, 'recipe-unknown.json'),
    rank: join(root, 'recipe-rank.json'),
    notJson: join(root, 'recipe-broken.json'),
    method: join(root, 'recipe-method.json'),
  };
  writeFileSync(recipeFor.unknownLayer, recipeOf({ 'model.layers.9.mlp.nope.weight': { format: 'mxint4', rank: 8 } }));
  writeFileSync(recipeFor.rank, recipeOf({ [Q]: { format: 'mxint4', rank: 500 } }));
  writeFileSync(recipeFor.notJson, '{ "kind": "quant-lens-recipe", ');
  writeFileSync(recipeFor.method, recipeOf({ [Q]: { format: 'mxint4', rank: 8 } }, { method: 'gptq' }));

  const conv = join(root, 'conv', 'model.onnx');
  mkdirSync(join(root, 'conv'));
  copyFileSync(convModel().path, conv);
  const images = join(root, 'images');
  mkdirSync(images);
  for (const n of ['0000.png', '0001.png']) copyFileSync(join(FIXTURES, 'ocr-lines/calibration', n), join(images, n));
  writeFileSync(join(images, 'labels.txt'), '0000.png\thello\n');
  const lm = join(root, 'lm', 'model.onnx');
  mkdirSync(join(root, 'lm'));
  copyFileSync(lmModel(512, 1), lm);

  const wide = join(root, 'wide.onnx');
  const C = 1 << 20;
  writeFileSync(
    wide,
    buildModel(
      {
        name: 'wide',
        nodes: [{ op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], name: 'mm' }],
        inputs: [{ name: 'x', elemType: OnnxType.FLOAT, dims: ['n', 1, 1, C] }],
        outputs: [{ name: 'y', elemType: OnnxType.FLOAT, dims: ['n', 1, 1, 1] }],
        initializers: [{ name: 'w', elemType: OnnxType.FLOAT, dims: [C, 1], raw: new Uint8Array(4 * C) }],
      },
      17,
    ),
  );
  const existing = join(root, 'existing.json');
  writeFileSync(existing, '{}\n');
  const readonly = join(root, 'readonly.json');
  writeFileSync(readonly, '{}\n');
  chmodSync(readonly, 0o444);
  const fifo = join(root, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const folder = join(root, 'a-folder');
  mkdirSync(folder);
  const noLinear = join(root, 'no-linear.safetensors');
  writeSafetensors(noLinear, [f32Tensor('model.norm.weight', [4], [1, 1, 1, 1])]);
  const nanWeights = join(root, 'nan-weights.safetensors');
  writeSafetensors(nanWeights, [
    f32Tensor(
      'model.layers.0.mlp.up_proj.weight',
      [32, 48],
      Array.from({ length: 32 * 48 }, (_, i) => (i === 40 ? NaN : i === 900 ? -Infinity : Math.sin(i) * 0.02)),
    ),
  ]);
  return {
    root,
    ckpt,
    index,
    shard,
    shardLink,
    stats,
    statsFor,
    recipe,
    recipeFor,
    conv,
    images,
    lm,
    wide,
    existing,
    readonly,
    fifo,
    folder,
    noLinear,
    nanWeights,
  };
}

/** Every file under root with the SHA-256 of its bytes (FIFOs and links by what they are). */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(root, p);
      if (e.isDirectory()) {
        out.set(`${rel}/`, 'dir');
        walk(p);
      } else if (e.isFile()) out.set(rel, createHash('sha256').update(readFileSync(p)).digest('hex'));
      else out.set(rel, e.isSymbolicLink() ? 'link' : 'special');
    }
  };
  walk(root);
  return out;
}

interface Case {
  name: string;
  args: (w: Workspace) => string[];
  /** What the one-line message must say: the file or option, and the problem. */
  message: (w: Workspace) => RegExp;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const CASES: Case[] = [
  // ---- outputs that would destroy an input
  {
    name: 'export --out onto the checkpoint index',
    args: (w) => ['export', w.ckpt, '--out', w.index, '--force'],
    message: (w) => new RegExp(`${esc(w.index)}: --out is the checkpoint`),
  },
  {
    name: 'export --out onto a shard',
    args: (w) => ['export', w.index, '--out', w.shard, '--force'],
    message: () => /--out is a shard of the checkpoint/,
  },
  {
    name: 'export --out onto a link to a shard',
    args: (w) => ['export', w.ckpt, '--out', w.shardLink, '--force'],
    message: () => /shard-link\.safetensors: --out is a shard of the checkpoint/,
  },
  {
    name: 'export --out onto a shard through ..',
    args: (w) => [
      'export',
      w.ckpt,
      '--out',
      join(w.folder, '..', 'llama', 'model-00001-of-00004.safetensors'),
      '--force',
    ],
    message: () => /--out is a shard of the checkpoint/,
  },
  {
    name: 'export --out onto the calibration file',
    args: (w) => ['export', w.ckpt, '--calib', w.stats, '--out', w.stats, '--force'],
    message: () => /--out is the calibration file/,
  },
  {
    name: 'export --out onto the recipe',
    args: (w) => ['export', w.ckpt, '--recipe', w.recipe, '--method', 'lqer', '--out', w.recipe, '--force'],
    message: () => /--out is the recipe/,
  },
  {
    name: 'inspect --html onto a shard',
    args: (w) => ['inspect', w.ckpt, '--html', w.shard, '--force'],
    message: () => /--html is a shard of the checkpoint/,
  },
  {
    name: 'inspect --html onto the calibration file',
    args: (w) => ['inspect', w.ckpt, '--calib', w.stats, '--html', w.stats, '--force'],
    message: () => /--html is the calibration file/,
  },
  {
    name: 'allocate --out onto the checkpoint index',
    args: (w) => ['allocate', w.index, '--budget-bits', '5', '--out', w.index, '--force'],
    message: () => /--out is the checkpoint/,
  },
  {
    name: 'allocate --out onto the calibration file',
    args: (w) => ['allocate', w.ckpt, '--budget-bits', '5', '--calib', w.stats, '--out', w.stats, '--force'],
    message: () => /--out is the calibration file/,
  },
  {
    name: 'calibrate --out onto the model',
    args: (w) => ['calibrate', w.conv, '--data', w.images, '--out', w.conv, '--force'],
    message: () => /--out is the model/,
  },
  {
    name: 'calibrate --out onto a file of the data folder',
    args: (w) => ['calibrate', w.conv, '--data', w.images, '--out', join(w.images, 'labels.txt'), '--force'],
    message: () => /labels\.txt: --out is a file in the calibration data/,
  },
  {
    name: 'reassemble --save-samples onto the model',
    args: (w) => ['reassemble', w.conv, '--calib-data', w.images, '--save-samples', w.conv, '--force'],
    message: () => /--save-samples is the checkpoint/,
  },
  // ---- outputs that are not regular files, exist, are read-only, or have no folder
  {
    name: 'export --out a folder',
    args: (w) => ['export', w.ckpt, '--out', w.folder],
    message: () => /a-folder: --out is a folder; only regular files are written/,
  },
  {
    name: 'export --out a name ending in /',
    args: (w) => ['export', w.ckpt, '--out', `${w.folder}/`],
    message: () => /--out names a folder/,
  },
  {
    name: 'export --out a FIFO',
    args: (w) => ['export', w.ckpt, '--out', w.fifo, '--force'],
    message: () => /fifo: --out is a FIFO/,
  },
  {
    name: 'export --out a device',
    args: (w) => ['export', w.ckpt, '--out', '/dev/null', '--force'],
    message: () => /\/dev\/null: --out is a device/,
  },
  {
    name: 'allocate --out an existing file without --force',
    args: (w) => ['allocate', w.ckpt, '--budget-bits', '5', '--out', w.existing],
    message: () => /existing\.json: --out exists; pass --force to replace it/,
  },
  {
    name: 'inspect --html a read-only file, even with --force',
    args: (w) => ['inspect', w.ckpt, '--html', w.readonly, '--force'],
    message: () => /readonly\.json: --html is read-only/,
  },
  {
    name: 'calibrate --out into a folder that does not exist',
    args: (w) => ['calibrate', w.conv, '--data', w.images, '--out', join(w.root, 'nowhere', 's.safetensors')],
    message: () => /nowhere\/s\.safetensors: cannot write --out: the folder .*nowhere does not exist/,
  },
  {
    name: 'reassemble --save-samples without --calib-data',
    args: (w) => ['reassemble', w.conv, '--calib', w.stats, '--save-samples', join(w.root, 's.safetensors')],
    message: () => /--save-samples needs --calib-data/,
  },
  // ---- numbers out of range, negative, not numbers
  {
    name: 'inspect --rank negative',
    args: (w) => ['inspect', w.ckpt, '--rank', '-5'],
    message: () => /--rank must be an integer from 0 to 65536 .*got "-5"/,
  },
  {
    name: 'inspect --rank 1e9',
    args: (w) => ['inspect', w.ckpt, '--rank', '1e9'],
    message: () => /--rank must be an integer from 0 to 65536/,
  },
  {
    name: 'export --rank above every layer',
    args: (w) => ['export', w.ckpt, '--rank', '1000', '--out', join(w.root, 'q.safetensors')],
    message: () => /--rank 1000 is above the rank of every selected layer \(the largest min\(out, in\) is 64\)/,
  },
  {
    name: 'fit-steps --rank not a number',
    args: (w) => ['fit-steps', w.ckpt, '--format', 'int4', '--rank', 'many'],
    message: () => /--rank must be an integer .*got "many"/,
  },
  {
    name: 'inspect --max-rank below --rank',
    args: (w) => ['inspect', w.ckpt, '--rank', '8', '--max-rank', '4'],
    message: () => /--max-rank \(4\) must be at least --rank \(8\)/,
  },
  {
    name: 'inspect --jobs 0',
    args: (w) => ['inspect', w.ckpt, '--jobs', '0'],
    message: () => /--jobs must be an integer from 1/,
  },
  {
    name: 'inspect --block 0',
    args: (w) => ['inspect', w.ckpt, '--block', '0'],
    message: () => /--block must be an integer from 1/,
  },
  {
    name: 'allocate --bins 1e9',
    args: (w) => ['allocate', w.ckpt, '--budget-bits', '5', '--bins', '1e9'],
    message: () => /--bins must be an integer from 10 to 100000 \(the exact DP's time and memory grow with it\)/,
  },
  {
    name: 'allocate --budget-bits 0',
    args: (w) => ['allocate', w.ckpt, '--budget-bits', '0'],
    message: () => /--budget-bits must be a number above 0 and at most 64/,
  },
  {
    name: 'allocate with two budgets',
    args: (w) => ['allocate', w.ckpt, '--budget-bits', '4', '--budget-bytes', '1000'],
    message: () => /exactly one of --budget-bits <b> and --budget-bytes <n>/,
  },
  {
    name: 'allocate --threads 100000',
    args: (w) => ['allocate', w.ckpt, '--budget-bits', '5', '--threads', '100000'],
    message: () => /--threads must be an integer from 1 to \d+ \(this machine has \d+ CPU cores\)/,
  },
  {
    name: 'calibrate --samples 1e9',
    args: (w) => ['calibrate', w.conv, '--data', w.images, '--out', join(w.root, 's.safetensors'), '--samples', '1e9'],
    message: () => /--samples must be an integer from 1 to 65536/,
  },
  {
    name: 'calibrate --threads 100000',
    args: (w) => [
      'calibrate',
      w.conv,
      '--data',
      w.images,
      '--out',
      join(w.root, 's.safetensors'),
      '--threads',
      '100000',
    ],
    message: () => /--threads must be an integer from 1/,
  },
  {
    name: 'calibrate --batch-size 0',
    args: (w) => ['calibrate', w.conv, '--data', w.images, '--out', join(w.root, 's.safetensors'), '--batch-size', '0'],
    message: () => /--batch-size must be an integer from 1 to 4096/,
  },
  {
    name: 'reassemble --channel-ratio 2',
    args: (w) => ['reassemble', w.ckpt, '--calib', w.stats, '--channel-ratio', '2'],
    message: () => /--channel-ratio must be a number above 0 and at most 1/,
  },
  {
    name: 'reassemble --w-bits 1',
    args: (w) => ['reassemble', w.ckpt, '--calib', w.stats, '--w-bits', '1'],
    message: () => /--w-bits must be an integer from 2 to 16/,
  },
  {
    name: 'eval --rank 1e9',
    args: (w) => ['eval', w.conv, '--data', w.images, '--rank', '1e9'],
    message: () => /must be an integer from 0 to 65536/,
  },
  {
    name: 'compare --tolerance -1',
    args: (w) => ['compare', w.ckpt, w.ckpt, '--tolerance', '-1'],
    message: () => /--tolerance must be a number from 0/,
  },
  // ---- options, arguments, formats
  {
    name: 'an unknown command',
    args: () => ['quantize'],
    message: () => /unknown command "quantize"; the commands are layers, /,
  },
  {
    name: 'an unknown option',
    args: (w) => ['layers', w.ckpt, '--verbose'],
    message: () => /Unknown option '--verbose'/,
  },
  {
    name: 'an extra argument',
    args: (w) => ['inspect', w.ckpt, w.stats],
    message: () => /unexpected argument ".*stats\.safetensors" \(expected <checkpoint>/,
  },
  {
    name: 'export without --out',
    args: (w) => ['export', w.ckpt],
    message: () => /--out <file\.safetensors> is required/,
  },
  {
    name: 'calibrate without --data',
    args: (w) => ['calibrate', w.conv, '--out', join(w.root, 's.safetensors')],
    message: () => /missing --data/,
  },
  {
    name: 'a checkpoint that does not exist',
    args: (w) => ['layers', join(w.root, 'nope.safetensors')],
    message: () => /nope\.safetensors/,
  },
  { name: 'an unknown format', args: (w) => ['inspect', w.ckpt, '--format', 'mxint99'], message: () => /mxint99/ },
  {
    name: 'an unknown method',
    args: (w) => ['inspect', w.ckpt, '--method', 'gptq'],
    message: () => /--method must be one of .*got "gptq"/,
  },
  {
    name: 'an unknown dtype',
    args: (w) => ['export', w.ckpt, '--dtype', 'f8', '--out', join(w.root, 'q.safetensors')],
    message: () => /--dtype must be f32, bf16 or f16/,
  },
  {
    name: 'a layer that does not exist',
    args: (w) => ['inspect', w.ckpt, '--layer', 'nope'],
    message: () => /no linear layer matches nope/,
  },
  {
    name: 'a layer pattern that is no regex',
    args: (w) => ['inspect', w.ckpt, '--layer', '/[/'],
    message: () => /--layer \/\[\/ is not a valid regular expression/,
  },
  {
    name: 'eval --ranks without --sweep',
    args: (w) => ['eval', w.conv, '--data', w.images, '--ranks', '4,8'],
    message: () => /--ranks applies with --sweep/,
  },
  {
    name: 'fit-steps without --format',
    args: (w) => ['fit-steps', w.ckpt],
    message: () => /--format int<n>.* is required/,
  },
  {
    name: 'compare with one checkpoint',
    args: (w) => ['compare', w.ckpt],
    message: () => /missing second checkpoint/,
  },
  {
    name: 'compare a file without linear layers',
    args: (w) => ['compare', w.noLinear, w.ckpt],
    message: (w) => new RegExp(`${esc(w.noLinear)}: has no linear layers to compare`),
  },
  {
    name: 'compare --layer that A lacks',
    args: (w) => ['compare', w.ckpt, w.index, '--layer', 'nope'],
    message: (w) => new RegExp(`${esc(w.ckpt)}: --layer nope: not a linear layer`),
  },
  {
    name: 'inspect a layer with NaN and infinite weights',
    args: (w) => ['inspect', w.nanWeights, '--method', 'lqer', '--rank', '8'],
    message: (w) =>
      new RegExp(
        `^quant-lens: ${esc(w.nanWeights)}: model\\.layers\\.0\\.mlp\\.up_proj\\.weight holds 2 NaN or infinite weights: its quantization error cannot be analysed\\n$`,
      ),
  },
  // ---- statistics that no activations produce
  {
    name: 'statistics with a NaN',
    args: (w) => [
      'export',
      w.ckpt,
      '--calib',
      w.statsFor.nan,
      '--layer',
      Q,
      '--method',
      'l2qer',
      '--out',
      join(w.root, 'q.safetensors'),
    ],
    message: (w) => new RegExp(`${esc(w.statsFor.nan)}: ${esc(Q)}\\.act_mean_abs holds NaN \\(at channel 3`),
  },
  {
    name: 'statistics with a negative RMS',
    args: (w) => ['inspect', w.ckpt, '--calib', w.statsFor.negative, '--layer', Q, '--method', 'qera-approx'],
    message: () => /negative\.safetensors: .*act_rms holds a negative value/,
  },
  {
    name: 'an asymmetric Gram',
    args: (w) => ['inspect', w.ckpt, '--calib', w.statsFor.asymmetric, '--layer', Q, '--method', 'qera-exact'],
    message: () =>
      /asymmetric\.safetensors: .*act_gram is not a Gram matrix .*not symmetric \(G\[0,1\] = 0\.5, G\[1,0\] = -0\.5\)/,
  },
  {
    name: 'an indefinite Gram (fitted steps)',
    args: (w) => ['fit-steps', w.ckpt, '--format', 'int4:g16', '--calib', w.statsFor.indefinite, '--layer', Q],
    message: () => /indefinite\.safetensors: .*act_gram .*not positive semi-definite/,
  },
  {
    name: 'export with statistics for one layer of many',
    args: (w) => [
      'export',
      w.ckpt,
      '--calib',
      w.statsFor.partial,
      '--method',
      'l2qer',
      '--out',
      join(w.root, 'q.safetensors'),
    ],
    message: () => /partial\.safetensors: has no act_mean_abs for 13 of the 14 layers/,
  },
  // ---- recipes
  {
    name: 'a recipe naming a layer the checkpoint lacks',
    args: (w) => ['export', w.ckpt, '--recipe', w.recipeFor.unknownLayer, '--out', join(w.root, 'q.safetensors')],
    message: () => /recipe-unknown\.json: .*model\.layers\.9\.mlp\.nope\.weight/,
  },
  {
    name: 'a recipe rank above the layer',
    args: (w) => ['export', w.ckpt, '--recipe', w.recipeFor.rank, '--out', join(w.root, 'q.safetensors')],
    message: () => /recipe-rank\.json: .*rank 500 is above what the layer can hold/,
  },
  {
    name: 'a recipe that is not JSON',
    args: (w) => ['export', w.ckpt, '--recipe', w.recipeFor.notJson, '--out', join(w.root, 'q.safetensors')],
    message: () => /recipe-broken\.json: recipe is not valid JSON/,
  },
  {
    name: "a recipe's unknown method",
    args: (w) => ['export', w.ckpt, '--recipe', w.recipeFor.method, '--out', join(w.root, 'q.safetensors')],
    message: () => /recipe-method\.json: the recipe's method "gptq"/,
  },
  // ---- evaluation data and models
  {
    name: 'CER without a dictionary',
    args: (w) => ['eval', w.conv, '--data', w.images, '--method', 'rtn'],
    message: (w) =>
      new RegExp(
        `${esc(w.images)}: labels\\.txt gives the images' text, but CER needs the recognizer's character dictionary`,
      ),
  },
  {
    name: 'a dictionary that does not exist',
    args: (w) => [
      'eval',
      w.conv,
      '--data',
      w.images,
      '--method',
      'rtn',
      '--task',
      'cer',
      '--dict',
      join(w.root, 'keys.txt'),
    ],
    message: () => /keys\.txt: no such character dictionary \(--dict\)/,
  },
  {
    name: 'activation rows that would not fit in memory',
    args: (w) => [
      'calibrate',
      w.wide,
      '--data',
      w.images,
      '--samples',
      '65536',
      '--out',
      join(w.root, 's.safetensors'),
    ],
    message: () =>
      /wide\.onnx: keeping 65536 activation rows \(--samples\) at 1 layer input needs 256\.0 GiB of memory/,
  },
  {
    name: 'a Gram that would not fit in memory',
    args: (w) => ['calibrate', w.wide, '--data', w.images, '--gram', '--out', join(w.root, 's.safetensors')],
    message: () => /wide\.onnx: the Gram matrices \(--gram\) of 1 layer needs 8192\.0 GiB of memory/,
  },
  {
    name: 'a batch size the model cannot take',
    args: (w) => [
      'calibrate',
      w.lm,
      '--data',
      TEXT,
      '--tokenizer',
      TOKENIZER,
      '--batch-size',
      '2',
      '--out',
      join(w.root, 's.safetensors'),
    ],
    message: () => /lm\/model\.onnx: input "input_ids" has a fixed batch dimension of 1: use --batch-size 1/,
  },
];

describe('bad invocations: exit 2, a message naming the file or option, nothing written, inputs intact', () => {
  let w: Workspace;
  let before0: Map<string, string>;
  let privateTmp: string;
  before(async () => {
    w = await makeWorkspace();
    before0 = snapshot(w.root);
    // Temporary files of evaluation sessions go here, so that this folder shows any left behind.
    privateTmp = mkdtempSync(join(tmpdir(), 'ql-bad-tmp-'));
    process.env.TMPDIR = privateTmp;
  });

  for (const c of CASES) {
    test(c.name, async () => {
      const args = c.args(w);
      const started = performance.now();
      const r = await runInProcess(args);
      const ms = performance.now() - started;
      const context = `quant-lens ${args.join(' ')}\n${r.stderr}`;
      assert.equal(r.code, 2, context);
      assert.match(r.stderr, /^quant-lens: /, context);
      assert.doesNotMatch(r.stderr, /\n\s+at |internal error/, `a stack trace: ${context}`);
      assert.match(r.stderr, c.message(w), context);
      assert.deepEqual(diff(before0, snapshot(w.root)), [], `files changed or left: ${context}`);
      assert.deepEqual(readdirSync(privateTmp), [], 'temporary files left');
      assert.ok(ms < 10_000, `took ${Math.round(ms)} ms`);
    });
  }
});

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of b) if (a.get(k) !== v) out.push(a.has(k) ? `changed ${k}` : `new ${k}`);
  for (const k of a.keys()) if (!b.has(k)) out.push(`removed ${k}`);
  return out;
}

async function runInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // Only stderr is patched: the test runner reports on this process's stdout.
  const errWrite = process.stderr.write.bind(process.stderr);
  let stdout = '';
  let stderr = '';
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      stdout += chunk.toString();
      done();
    },
  });
  process.stderr.write = (chunk: string | Uint8Array) => ((stderr += String(chunk)), true);
  try {
    return { code: await main(args, out), stdout, stderr };
  } finally {
    process.stderr.write = errWrite;
  }
}

function runBundle(args: string[], shellPrefix = ''): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const quoted = [process.execPath, cliScript(), ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const child = spawn('sh', ['-c', `${shellPrefix}exec ${quoted}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

describe('the built CLI', () => {
  let w: Workspace;
  before(async () => {
    w = await makeWorkspace();
  });

  test('exits 2 with one line and no trace for a sample of bad invocations (one per command)', async () => {
    const byCommand = new Map<string, Case>();
    for (const c of CASES) byCommand.set(c.args(w)[0]!, byCommand.get(c.args(w)[0]!) ?? c);
    const before0 = snapshot(w.root);
    const rows = await Promise.all([...byCommand.values()].map(async (c) => ({ c, r: await runBundle(c.args(w)) })));
    for (const { c, r } of rows) {
      assert.equal(r.code, 2, `${c.name}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${c.name}: one line: ${r.stderr}`);
      assert.match(r.stderr, c.message(w));
    }
    assert.deepEqual(diff(before0, snapshot(w.root)), []);
  });

  test('a file size limit (a full disk) ends with exit 2 naming the output, and nothing left', async () => {
    const before0 = snapshot(w.root);
    const out = join(w.root, 'big.safetensors');
    const r = await runBundle(['export', w.ckpt, '--method', 'rtn', '--out', out], 'ulimit -f 64; ');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^quant-lens: ${esc(out)}: cannot write --out: the file size limit was reached`));
    assert.deepEqual(diff(before0, snapshot(w.root)), []);
  });

  test(
    'a folder without write permission is refused before any work',
    { skip: process.getuid?.() === 0 ? 'root writes anywhere' : false },
    async () => {
      const locked = join(w.root, 'locked');
      mkdirSync(locked);
      chmodSync(locked, 0o555);
      const r = await runBundle(['export', w.ckpt, '--out', join(locked, 'q.safetensors')]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /cannot write --out in the folder .*locked: permission denied/);
      assert.deepEqual(readdirSync(locked), []);
      assert.ok(statSync(locked).isDirectory());
    },
  );
});
