import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliScript } from '../../helpers/workerBundle';
import { pythonMissing, runPythonJson } from '../../helpers/python';
import { parseFormat } from '../../../src/engine/quantizers';
import { compressedTensorsArgs, exactPattern } from '../../../src/engine/export/targets/llmCompressor';
import { modelOptLayerConfig } from '../../../src/engine/export/targets/modelOpt';
import { isUnmapped } from '../../../src/engine/export/target';
import { toYaml } from '../../../src/engine/export/yaml';

const TINY_LLAMA = join(import.meta.dirname, '../../fixtures/models/tiny-llama');
const MODEL = join(TINY_LLAMA, 'model.safetensors');
const ROLES = [
  'self_attn.q_proj',
  'self_attn.k_proj',
  'self_attn.v_proj',
  'self_attn.o_proj',
  'mlp.gate_proj',
  'mlp.up_proj',
  'mlp.down_proj',
];

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [cliScript(), ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Each format with the compressed-tensors preset whose weights it must equal and the ModelOpt algorithm. */
const MAPPED: { format: string; preset: string | null; modelopt: Record<string, unknown> | null | 'refused' }[] = [
  {
    format: 'int4:g128:sym',
    preset: 'W4A16',
    modelopt: { quant_algo: 'W4A16_AWQ', group_size: 128, has_zero_point: false, pre_quant_scale: false },
  },
  { format: 'int4:g128', preset: 'W4A16_ASYM', modelopt: 'refused' },
  { format: 'int8:g128:sym', preset: 'W8A16', modelopt: 'refused' },
  { format: 'int8:channel:sym', preset: 'INT8_W8A8', modelopt: { quant_algo: 'W8A16' } },
  { format: 'fp8', preset: 'FP8_DYNAMIC', modelopt: { quant_algo: 'FP8_PER_CHANNEL_PER_TOKEN' } },
  { format: 'fp8:block=-1x-1', preset: 'FP8', modelopt: { quant_algo: 'FP8' } },
  { format: 'fp8:block=128x128', preset: 'FP8_BLOCK', modelopt: 'refused' },
  { format: 'nvfp4', preset: 'NVFP4A16', modelopt: { quant_algo: 'W4A16_NVFP4', group_size: 16 } },
  { format: 'mxfp4', preset: 'MXFP4A16', modelopt: 'refused' },
  { format: 'mxfp8', preset: 'MXFP8A16', modelopt: { quant_algo: 'MXFP8', group_size: 32 } },
  { format: 'fp16', preset: null, modelopt: null },
];

function recipeFile(dir: string, name: string, formatOf: (i: number) => string, rank = 8): string {
  const layers: Record<string, { format: string; rank: number }> = {};
  let i = 0;
  for (let b = 0; b < 4; b++)
    for (const role of ROLES) layers[`model.layers.${b}.${role}.weight`] = { format: formatOf(i++), rank };
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ kind: 'quant-lens-recipe', version: 1, method: 'lqer', layers }));
  return path;
}

test('format mapping: what llm-compressor and ModelOpt can express, and why not otherwise', () => {
  const ct = (f: string, inFeatures = 4096) => compressedTensorsArgs(parseFormat(f), inFeatures);
  const mo = (f: string) => modelOptLayerConfig(parseFormat(f));
  assert.deepEqual(ct('int3:g64'), {
    num_bits: 3,
    type: 'int',
    symmetric: false,
    strategy: 'group',
    group_size: 64,
    dynamic: false,
  });
  assert.deepEqual(ct('int4:channel:sym'), {
    num_bits: 4,
    type: 'int',
    symmetric: true,
    strategy: 'channel',
    dynamic: false,
  });
  assert.match(
    (ct('int4:g128', 4000) as { refused: string }).refused,
    /4000 input channels do not split into groups of 128/,
  );
  assert.ok(
    !isUnmapped(ct('int4:g128', 64)),
    'a row narrower than the group is one group (llm-compressor checks only in ≥ group)',
  );
  assert.match((ct('mxint4') as { refused: string }).refused, /no shared-exponent integer \(MXINT\)/);
  assert.match((ct('mxfp6') as { refused: string }).refused, /not E2M3/);
  assert.match((ct('mxfp4:block=16') as { refused: string }).refused, /blocks of 32/);
  assert.match((ct('nvfp4:block=32') as { refused: string }).refused, /blocks of 16/);
  assert.match((mo('int4:g128') as { refused: string }).refused, /no zero point/);
  assert.match((mo('int3:g128:sym') as { refused: string }).refused, /4 or 8 bits, not 3/);
  assert.match((mo('mxfp4') as { refused: string }).refused, /MXFP4/);
  assert.match((mo('mxint4') as { refused: string }).refused, /MXINT/);
  assert.deepEqual(ct('fp16'), {});
  assert.deepEqual(mo('fp16'), {});
  assert.equal(exactPattern('model.layers.0.mlp.up_proj'), 're:^model\\.layers\\.0\\.mlp\\.up_proj$');
});

test('toYaml writes block YAML whose strings cannot be misread', () => {
  assert.equal(
    toYaml({ a: { b: ['re:^x\\.y$', 'yes'], c: 4, d: true, e: [], f: {} }, 'g h': null }, ['one', 'two\nthree']),
    '# one\n# two\n# three\na:\n  b:\n    - "re:^x\\\\.y$"\n    - "yes"\n  c: 4\n  d: true\n  e: []\n  f: {}\n"g h": null\n',
  );
});

test('a format a target cannot express is refused with exit 2 naming the layer, the value and the target; nothing is written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-recipes-bad-'));
  const recipe = recipeFile(dir, 'r.json', (i) => (i === 5 ? 'mxint4' : 'int4:g128:sym'));
  for (const [to, label] of [
    ['llm-compressor', 'llm-compressor recipe'],
    ['modelopt', 'ModelOpt hf_quant_config.json'],
  ] as const) {
    const out = join(dir, `${to}.out`);
    const r = cli(['export', MODEL, '--to', to, '--recipe', recipe, '--out', out]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `r\\.json: the ${label} export cannot express this:\\n {2}layer "model\\.layers\\.0\\.mlp\\.up_proj\\.weight": format mxint4 — `,
      ),
    );
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
    assert.equal(existsSync(out), false);
  }
  const onnx = cli([
    'export',
    join(TINY_LLAMA, 'model.onnx'),
    '--to',
    'llm-compressor',
    '--format',
    'int4:g128:sym',
    '--out',
    join(dir, 'x.yaml'),
  ]);
  assert.equal(onnx.code, 2);
  assert.match(onnx.stderr, /a onnx checkpoint — an llm-compressor recipe names the modules of a Hugging Face model/);
  const dtype = cli([
    'export',
    MODEL,
    '--to',
    'modelopt',
    '--format',
    'nvfp4',
    '--dtype',
    'bf16',
    '--out',
    join(dir, 'y.json'),
  ]);
  assert.equal(dtype.code, 2);
  assert.match(dtype.stderr, /--dtype does not apply to the ModelOpt hf_quant_config\.json export/);
});

test('ModelOpt: one configuration is written flat with exclude_modules, as ModelOpt writes it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-modelopt-'));
  const out = join(dir, 'hf_quant_config.json');
  const r = cli(['export', MODEL, '--to', 'modelopt', '--format', 'nvfp4', '--method', 'rtn', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /low-rank correction/, 'RTN: no correction to leave out');
  assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), {
    producer: { name: 'quant-lens' },
    quantization: {
      quant_algo: 'W4A16_NVFP4',
      group_size: 16,
      kv_cache_quant_algo: null,
      exclude_modules: ['lm_head', 'model.embed_tokens'],
    },
  });
  const again = cli(['export', MODEL, '--to', 'modelopt', '--format', 'nvfp4', '--out', out]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /exists; pass --force/);
  const forced = cli(['export', MODEL, '--to', 'modelopt', '--format', 'nvfp4', '--out', out, '--force']);
  assert.equal(forced.code, 0);
  assert.match(forced.stderr, /low-rank correction \(rank > 0 on 28 layers\) is not part of the ModelOpt/);
});

test(
  'llm-compressor and ModelOpt files validate against the schemas their loaders use, and every layer gets its format',
  {
    skip:
      pythonMissing(['torch', 'transformers', 'yaml', 'pydantic'], ['torch', 'transformers', 'pyyaml', 'pydantic']) ??
      false,
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'ql-recipes-'));
    const formatOf = (i: number) => MAPPED[i % MAPPED.length]!.format;
    const recipe = recipeFile(dir, 'all.json', formatOf);
    const yamlOut = join(dir, 'recipe.yaml');
    assert.equal(cli(['export', MODEL, '--to', 'llm-compressor', '--recipe', recipe, '--out', yamlOut]).code, 0);
    // ModelOpt takes the formats it can express; the others stay in float for this check.
    const moRecipe = recipeFile(dir, 'mo.json', (i) =>
      MAPPED[i % MAPPED.length]!.modelopt === 'refused' ? 'fp16' : formatOf(i),
    );
    const moOut = join(dir, 'hf_quant_config.json');
    const mo = cli(['export', MODEL, '--to', 'modelopt', '--recipe', moRecipe, '--out', moOut]);
    assert.equal(mo.code, 0, mo.stderr);
    const got = runPythonJson<{
      presets: Record<string, Record<string, unknown>>;
      llm_compressor: Record<string, Record<string, unknown> | 'ignored' | null>;
      modelopt: Record<string, Record<string, unknown> | 'excluded' | null>;
    }>('check_recipes.py', ['--model', TINY_LLAMA, '--llm-compressor', yamlOut, '--modelopt', moOut]);
    assert.equal(got.llm_compressor['lm_head'], 'ignored');
    assert.equal(got.modelopt['lm_head'], null);
    let i = 0;
    for (let b = 0; b < 4; b++)
      for (const role of ROLES) {
        const module = `model.layers.${b}.${role}`;
        const m = MAPPED[i++ % MAPPED.length]!;
        const ct = got.llm_compressor[module];
        if (m.preset === null) assert.equal(ct, 'ignored', `${module} (${m.format})`);
        else
          assert.deepEqual(
            ct,
            got.presets[m.preset],
            `${module} (${m.format}) = compressed-tensors preset ${m.preset}`,
          );
        const want = m.modelopt === 'refused' ? null : m.modelopt;
        assert.deepEqual(got.modelopt[module], want, `${module} (${m.format}) in hf_quant_config.json`);
      }
  },
);
