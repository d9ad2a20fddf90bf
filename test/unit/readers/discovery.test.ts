import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TensorInfo } from '../../../src/engine/readers/checkpoint';
import { analyseName, discoverLinearLayers, type DiscoveryHints } from '../../../src/engine/readers/discovery';
import { parseHfConfig } from '../../../src/engine/readers/hfConfig';

const t = (name: string, shape: number[], dtype = 'BF16'): TensorInfo => ({
  name,
  shape,
  dtype,
  file: '/m.safetensors',
  byteLength: 0,
  decodable: true,
});

function discover(tensors: TensorInfo[], hints: Partial<DiscoveryHints> = {}) {
  return discoverLinearLayers(tensors, { architecture: null, ...hints });
}

/** [name, role, block, quantized, [out, in], transposed] for compact assertions. */
function rows(tensors: TensorInfo[], hints: Partial<DiscoveryHints> = {}) {
  return discover(tensors, hints).layers.map((l) => [
    l.name,
    l.role,
    l.block,
    l.quantizedByDefault,
    l.shape,
    l.storedTransposed,
  ]);
}

test('Llama / Mistral / Qwen names: the seven projections per block; embeddings and lm_head not quantized', () => {
  const names = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((p) => t(`model.layers.10.self_attn.${p}.weight`, [8, 8]));
  const mlp = ['gate_proj', 'up_proj', 'down_proj'].map((p) => t(`model.layers.2.mlp.${p}.weight`, [8, 8]));
  const r = discover(
    [
      t('lm_head.weight', [32, 8]),
      ...names,
      ...mlp,
      t('model.embed_tokens.weight', [32, 8]),
      t('model.norm.weight', [8]),
      t('model.layers.2.input_layernorm.weight', [8]),
      t('model.layers.2.self_attn.q_proj.bias', [8]),
    ],
    { architecture: 'Qwen2ForCausalLM' },
  );
  assert.equal(r.family, 'qwen');
  assert.deepEqual(
    r.layers.map((l) => [l.name.replace(/^model\./, ''), l.role, l.block, l.quantizedByDefault, l.group]),
    [
      ['embed_tokens.weight', 'embedding', null, false, 'embedding'],
      ['layers.2.mlp.gate_proj.weight', 'gate_proj', 2, true, 'mlp'],
      ['layers.2.mlp.up_proj.weight', 'up_proj', 2, true, 'mlp'],
      ['layers.2.mlp.down_proj.weight', 'down_proj', 2, true, 'mlp'],
      ['layers.10.self_attn.q_proj.weight', 'q_proj', 10, true, 'attention'],
      ['layers.10.self_attn.k_proj.weight', 'k_proj', 10, true, 'attention'],
      ['layers.10.self_attn.v_proj.weight', 'v_proj', 10, true, 'attention'],
      ['layers.10.self_attn.o_proj.weight', 'o_proj', 10, true, 'attention'],
      ['lm_head.weight', 'lm_head', null, false, 'head'],
    ],
  );
  assert.equal(
    discover([t('model.layers.0.self_attn.q_proj.weight', [8, 8])], { architecture: 'GemmaForCausalLM' }).family,
    'gemma',
  );
  assert.equal(
    discover([t('model.layers.0.self_attn.q_proj.weight', [8, 8])], { architecture: 'MistralForCausalLM' }).family,
    'mistral',
  );
  assert.equal(discover([t('model.layers.0.mlp.gate_proj.weight', [8, 8])]).family, 'llama');
});

test('GPT-2 Conv1D weights are [in, out]; the config’s width confirms each one', () => {
  const tensors = [
    t('transformer.h.0.attn.c_attn.weight', [32, 96]),
    t('transformer.h.0.attn.c_proj.weight', [32, 32]),
    t('transformer.h.0.mlp.c_fc.weight', [32, 128]),
    t('transformer.h.0.mlp.c_proj.weight', [128, 32]),
    t('transformer.wte.weight', [64, 32]),
    t('transformer.wpe.weight', [16, 32]),
  ];
  const config = parseHfConfig({ architectures: ['GPT2LMHeadModel'], n_embd: 32, n_layer: 1 });
  const expected = [
    ['transformer.wpe.weight', 'embedding', null, false, [16, 32], false],
    ['transformer.wte.weight', 'embedding', null, false, [64, 32], false],
    ['transformer.h.0.attn.c_attn.weight', 'qkv_proj', 0, true, [96, 32], true],
    ['transformer.h.0.attn.c_proj.weight', 'o_proj', 0, true, [32, 32], true],
    ['transformer.h.0.mlp.c_fc.weight', 'fc1', 0, true, [128, 32], true],
    ['transformer.h.0.mlp.c_proj.weight', 'fc2', 0, true, [32, 128], true],
  ];
  assert.deepEqual(rows(tensors, { architecture: 'GPT2LMHeadModel', config }), expected);
  // Without a config the names alone say GPT-2.
  assert.deepEqual(rows(tensors), expected);
  // A checkpoint someone converted to [out, in] keeps its layout when the config says so.
  const converted = rows([t('transformer.h.0.mlp.c_fc.weight', [128, 32])], {
    architecture: 'GPT2LMHeadModel',
    config,
  });
  assert.deepEqual(converted[0]!.slice(4), [[128, 32], false]);
});

test('OPT, BERT, Phi, Phi-3, Falcon, GPT-NeoX and Meta’s original Llama names', () => {
  const role = (name: string) => {
    const a = analyseName(name);
    return [a.role, a.block, a.quantizedByDefault];
  };
  assert.deepEqual(role('model.decoder.layers.3.self_attn.out_proj.weight'), ['o_proj', 3, true]);
  assert.deepEqual(role('model.decoder.layers.3.fc1.weight'), ['fc1', 3, true]);
  assert.deepEqual(role('model.decoder.embed_positions.weight'), ['embedding', null, false]);
  assert.deepEqual(role('bert.encoder.layer.5.attention.self.query.weight'), ['q_proj', 5, true]);
  assert.deepEqual(role('bert.encoder.layer.5.attention.output.dense.weight'), ['o_proj', 5, true]);
  assert.deepEqual(role('bert.encoder.layer.5.intermediate.dense.weight'), ['fc1', 5, true]);
  assert.deepEqual(role('bert.encoder.layer.5.output.dense.weight'), ['fc2', 5, true]);
  assert.deepEqual(role('bert.pooler.dense.weight'), ['pooler', null, false]);
  assert.deepEqual(role('cls.predictions.transform.dense.weight'), ['classifier', null, false]);
  assert.deepEqual(role('model.layers.1.self_attn.dense.weight'), ['o_proj', 1, true]);
  assert.deepEqual(role('model.layers.1.mlp.fc2.weight'), ['fc2', 1, true]);
  assert.deepEqual(role('model.layers.1.self_attn.qkv_proj.weight'), ['qkv_proj', 1, true]);
  assert.deepEqual(role('model.layers.1.mlp.gate_up_proj.weight'), ['gate_up_proj', 1, true]);
  assert.deepEqual(role('transformer.h.7.self_attention.query_key_value.weight'), ['qkv_proj', 7, true]);
  assert.deepEqual(role('transformer.h.7.self_attention.dense.weight'), ['o_proj', 7, true]);
  assert.deepEqual(role('gpt_neox.layers.2.mlp.dense_4h_to_h.weight'), ['fc2', 2, true]);
  assert.deepEqual(role('gpt_neox.embed_in.weight'), ['embedding', null, false]);
  assert.deepEqual(role('embed_out.weight'), ['lm_head', null, false]);
  assert.deepEqual(role('layers.4.attention.wq.weight'), ['q_proj', 4, true]);
  assert.deepEqual(role('layers.4.feed_forward.w1.weight'), ['gate_proj', 4, true]);
  assert.deepEqual(role('layers.4.feed_forward.w2.weight'), ['down_proj', 4, true]);
  assert.deepEqual(role('tok_embeddings.weight'), ['embedding', null, false]);
  assert.deepEqual(role('output.weight'), ['lm_head', null, false]);
  assert.equal(
    discover([t('model.decoder.layers.0.fc1.weight', [8, 8])], { architecture: 'OPTForCausalLM' }).family,
    'opt',
  );
  assert.equal(discover([t('bert.encoder.layer.0.attention.self.query.weight', [8, 8])]).family, 'bert');
  assert.equal(
    discover([t('model.layers.0.self_attn.dense.weight', [8, 8])], { architecture: 'PhiForCausalLM' }).family,
    'phi',
  );
  assert.equal(
    discover([t('model.layers.0.self_attn.qkv_proj.weight', [8, 8])], { architecture: 'Phi3ForCausalLM' }).family,
    'phi3',
  );
});

test('MoE: per-expert matrices, shared experts, routers, and stacked [experts, out, in] tensors', () => {
  const mixtral = discover(
    [
      t('model.layers.0.block_sparse_moe.experts.1.w1.weight', [24, 16]),
      t('model.layers.0.block_sparse_moe.experts.0.w2.weight', [16, 24]),
      t('model.layers.0.block_sparse_moe.gate.weight', [3, 16]),
    ],
    { architecture: 'MixtralForCausalLM' },
  );
  assert.equal(mixtral.family, 'mixtral');
  assert.deepEqual(
    mixtral.layers.map((l) => [l.role, l.group, l.expert ?? null, l.quantizedByDefault]),
    [
      ['router', 'router', null, false],
      ['down_proj', 'expert', 0, true],
      ['gate_proj', 'expert', 1, true],
    ],
  );
  const qwen = discover([
    t('model.layers.0.mlp.experts.7.up_proj.weight', [8, 16]),
    t('model.layers.0.mlp.shared_expert.up_proj.weight', [8, 16]),
    t('model.layers.0.mlp.shared_expert_gate.weight', [1, 16]),
    t('model.layers.0.mlp.gate.weight', [8, 16]),
  ]);
  assert.equal(qwen.family, 'qwen-moe');
  assert.deepEqual(
    qwen.layers.map((l) => [l.name.split('mlp.')[1], l.role, l.group]),
    [
      ['gate.weight', 'router', 'router'],
      ['shared_expert_gate.weight', 'router', 'router'],
      ['shared_expert.up_proj.weight', 'up_proj', 'mlp'],
      ['experts.7.up_proj.weight', 'up_proj', 'expert'],
    ],
  );
  // transformers ≥ 5 keeps experts stacked in memory; with the config's width the orientation is certain.
  const config = parseHfConfig({ hidden_size: 16, num_local_experts: 2 });
  const stacked = discover(
    [
      t('model.layers.0.mlp.experts.gate_up_proj', [2, 48, 16]),
      t('model.layers.0.mlp.experts.down_proj', [2, 16, 24]),
      t('other.experts.down_proj', [2, 24, 16]),
    ],
    { config },
  );
  assert.deepEqual(
    stacked.layers.map((l) => [l.name, l.tensor, l.expert, l.shape, l.storedTransposed, l.role]),
    [
      [
        'model.layers.0.mlp.experts.gate_up_proj[0]',
        'model.layers.0.mlp.experts.gate_up_proj',
        0,
        [48, 16],
        false,
        'gate_up_proj',
      ],
      [
        'model.layers.0.mlp.experts.down_proj[0]',
        'model.layers.0.mlp.experts.down_proj',
        0,
        [16, 24],
        false,
        'down_proj',
      ],
      [
        'model.layers.0.mlp.experts.gate_up_proj[1]',
        'model.layers.0.mlp.experts.gate_up_proj',
        1,
        [48, 16],
        false,
        'gate_up_proj',
      ],
      [
        'model.layers.0.mlp.experts.down_proj[1]',
        'model.layers.0.mlp.experts.down_proj',
        1,
        [16, 24],
        false,
        'down_proj',
      ],
      ['other.experts.down_proj[0]', 'other.experts.down_proj', 0, [16, 24], true, 'down_proj'],
      ['other.experts.down_proj[1]', 'other.experts.down_proj', 1, [16, 24], true, 'down_proj'],
    ],
  );
});

test('unknown architectures: every 2-D float weight, norms off, packed integers and biases skipped', () => {
  assert.deepEqual(
    rows([
      t('encoder.proj.weight', [8, 4]),
      t('encoder.final_norm.weight', [8, 4]),
      t('encoder.qweight', [8, 4], 'I32'),
      t('encoder.proj.weight_scale', [8, 1], 'F32'),
      t('encoder.proj.bias', [8]),
      t('encoder.empty.weight', [0, 4]),
      t('encoder.conv.weight', [8, 4, 3, 3]),
    ]),
    [
      ['encoder.final_norm.weight', 'linear', null, false, [8, 4], false],
      ['encoder.proj.weight', 'linear', null, true, [8, 4], false],
    ],
  );
  // TensorFlow kernels are [in, out].
  assert.deepEqual(
    rows([t('dense/kernel', [4, 8], 'float32'), t('embedding/embeddings', [10, 4], 'float32')], { convention: 'tf' }),
    [
      ['embedding/embeddings', 'embedding', null, false, [10, 4], false],
      ['dense/kernel', 'linear', null, true, [8, 4], true],
    ],
  );
});
