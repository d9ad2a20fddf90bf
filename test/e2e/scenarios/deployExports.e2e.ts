/**
 * Export Quantized Checkpoint… to every target from the overview, in a real workbench: the picker
 * offers only the targets the chosen weight format allows (the others named in its placeholder), a
 * save dialog per target, a progress notification, and the written files read back here — the
 * Quant Lens safetensors, the Hugging Face folder with its PEFT adapter, the llm-compressor recipe
 * and the ModelOpt hf_quant_config.json at NVFP4; the GGUF pair and the llama-quantize tensor-type
 * file at llama.cpp's Q4_0.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { e2eEnv } from '../lib/env';
import {
  Overview,
  chooseOption,
  exportThroughPicker,
  screenshot,
  showExplorer,
  ui,
  writeUiFixtures,
} from '../lib/quantLensUi';
import { workbenchSuite } from '../lib/suite';
import type { Workbench } from '../lib/workbench';

const SUITE = 'deploy-exports';
writeUiFixtures(e2eEnv().workspace);

function safetensorsHeader(path: string): Record<string, { dtype: string; shape: number[] }> {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[] }
  >;
  delete header.__metadata__;
  return header;
}

async function exportTo(
  wb: Workbench,
  overview: Overview,
  label: string,
  out: string,
  folder: boolean,
): Promise<{ offered: string[]; placeholder: string }> {
  await overview.click('export-checkpoint');
  return exportThroughPicker(wb, label, out, { folder });
}

describe('Deploying what you chose', () => {
  const suite = workbenchSuite(SUITE);

  suite.scenario(
    'NVFP4: Quant Lens safetensors, HF + PEFT, llm-compressor and ModelOpt, each read back',
    async (wb, env) => {
      await showExplorer(wb);
      await wb.explorerContextAction(ui.file, 'Inspect Checkpoint');
      const overview = await Overview.of(wb, ui.fileName);
      await chooseOption(overview.frame, 'weight-format', 'NVFP4');
      const stamp = Date.now();
      const out = (name: string) => join(env.workspace, `deploy-${stamp}-${name}`);

      const ql = out('q.safetensors');
      const first = await exportTo(wb, overview, 'Quant Lens safetensors', ql, false);
      assert.ok(first.offered.includes('Hugging Face checkpoint + PEFT adapter'), first.offered.join(', '));
      assert.ok(
        first.offered.includes('llm-compressor recipe') && first.offered.includes('ModelOpt hf_quant_config.json'),
      );
      assert.ok(
        !first.offered.some((t) => t.startsWith('GGUF')),
        'GGUF holds llama.cpp types only: not offered at NVFP4',
      );
      assert.match(first.placeholder, /Not offered for these formats: GGUF \+ LoRA adapter \(llama\.cpp\) \(nvfp4\)/);
      const header = safetensorsHeader(ql);
      for (const name of ui.layers) {
        assert.ok(header[name], `${name} holds W_q`);
        assert.ok(header[`${name}.lqer_A`], `${name} has its correction`);
      }
      await screenshot(wb, env, SUITE, 'export-safetensors');

      const hf = out('hf');
      await exportTo(wb, overview, 'Hugging Face checkpoint + PEFT adapter', hf, true);
      assert.deepEqual(readdirSync(hf).sort(), ['adapter', 'config.json', 'model.safetensors']);
      const adapterConfig = JSON.parse(readFileSync(join(hf, 'adapter', 'adapter_config.json'), 'utf8')) as {
        peft_type: string;
        r: number;
        lora_alpha: number;
        target_modules: string[];
      };
      assert.equal(adapterConfig.peft_type, 'LORA');
      assert.equal(adapterConfig.lora_alpha, adapterConfig.r);
      assert.deepEqual(
        adapterConfig.target_modules,
        ui.layers.map((n) => n.replace(/\.weight$/, '')),
      );
      const adapter = safetensorsHeader(join(hf, 'adapter', 'adapter_model.safetensors'));
      const q0 = ui.layer(0, 'q_proj').replace(/\.weight$/, '');
      assert.deepEqual(adapter[`base_model.model.${q0}.lora_A.weight`]?.shape, [adapterConfig.r, 256]);
      assert.deepEqual(adapter[`base_model.model.${q0}.lora_B.weight`]?.shape, [256, adapterConfig.r]);
      assert.deepEqual(
        Object.keys(safetensorsHeader(join(hf, 'model.safetensors'))).sort(),
        Object.keys(header)
          .filter((n) => !n.includes('.lqer_'))
          .sort(),
      );

      const yaml = out('recipe.yaml');
      await exportTo(wb, overview, 'llm-compressor recipe', yaml, false);
      const recipe = readFileSync(yaml, 'utf8');
      assert.match(recipe, /QuantizationModifier:/);
      assert.match(recipe, /strategy: "tensor_group"\n\s+group_size: 16/);
      for (const name of ui.layers) {
        const pattern = `re:^${name.replace(/\.weight$/, '').replace(/\./g, '\\.')}$`;
        assert.ok(recipe.includes(JSON.stringify(pattern).slice(1, -1)), `${name} targeted`);
      }

      const json = out('hf_quant_config.json');
      await exportTo(wb, overview, 'ModelOpt hf_quant_config.json', json, false);
      const modelOpt = JSON.parse(readFileSync(json, 'utf8')) as { quantization: Record<string, unknown> };
      assert.equal(modelOpt.quantization.quant_algo, 'W4A16_NVFP4');
      assert.equal(modelOpt.quantization.group_size, 16);
      await screenshot(wb, env, SUITE, 'export-modelopt-done');
    },
  );

  suite.scenario('Q4_0: GGUF + LoRA and the llama-quantize tensor-type file, each read back', async (wb, env) => {
    await showExplorer(wb);
    await wb.explorerContextAction(ui.file, 'Inspect Checkpoint');
    const overview = await Overview.of(wb, ui.fileName);
    await chooseOption(overview.frame, 'weight-format', 'Q4_0');
    const stamp = Date.now();
    const gguf = join(env.workspace, `deploy-${stamp}-gguf`);
    const picked = await exportTo(wb, overview, 'GGUF + LoRA adapter (llama.cpp)', gguf, true);
    assert.ok(!picked.offered.includes('llm-compressor recipe'), 'llm-compressor has no llama.cpp types');
    assert.match(picked.placeholder, /llm-compressor recipe \(format q4_0\)/);
    for (const f of ['model.gguf', 'lora.gguf']) {
      const bytes = readFileSync(join(gguf, f));
      assert.equal(bytes.subarray(0, 4).toString('latin1'), 'GGUF', `${f} is a GGUF file`);
      assert.equal(bytes.readUInt32LE(4), 3, `${f} is GGUF v3`);
    }
    assert.ok(
      readFileSync(join(gguf, 'lora.gguf')).includes(Buffer.from('adapter.lora.alpha')),
      'a llama.cpp LoRA adapter',
    );
    assert.ok(
      readFileSync(join(gguf, 'model.gguf')).includes(Buffer.from('blk.0.attn_q.weight')),
      'llama.cpp tensor names',
    );

    const txt = join(env.workspace, `deploy-${stamp}.tensor-types.txt`);
    await exportTo(wb, overview, 'llama-quantize tensor-type file', txt, false);
    const lines = readFileSync(txt, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    assert.ok(lines.length > 0 && lines.every((l) => /=q4_0$/i.test(l)), lines.join('\n'));
    assert.ok(existsSync(txt));
    await screenshot(wb, env, SUITE, 'export-tensor-types-done');
  });
});
