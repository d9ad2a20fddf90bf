/**
 * What llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel) does to a Llama-family Hugging
 * Face checkpoint, for the GGUF export: tensor names, the row permutation of q_proj/k_proj (the
 * converter interleaves the two rotary halves of each head), the `llama.*` hyperparameters from
 * config.json, and a BPE tokenizer from tokenizer.json.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { QuantLensError } from '../errors';
import { resolveInside } from '../readers/pathSafety';
import type { GgufMetadataValue } from '../writers/ggufWriter';

const MAX_JSON_BYTES = 64 << 20;

/**
 * GGUF name of a Llama tensor; null for tensors the converter drops (rotary inv_freq), undefined
 * for names it would not know.
 */
export function llamaGgufName(hfName: string): string | null | undefined {
  const fixed: Record<string, string> = {
    'model.embed_tokens.weight': 'token_embd.weight',
    'model.norm.weight': 'output_norm.weight',
    'lm_head.weight': 'output.weight',
  };
  const direct = fixed[hfName];
  if (direct) return direct;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (m) {
    const block: Record<string, string> = {
      'input_layernorm.weight': 'attn_norm.weight',
      'self_attn.q_proj.weight': 'attn_q.weight',
      'self_attn.k_proj.weight': 'attn_k.weight',
      'self_attn.v_proj.weight': 'attn_v.weight',
      'self_attn.o_proj.weight': 'attn_output.weight',
      'post_attention_layernorm.weight': 'ffn_norm.weight',
      'mlp.gate_proj.weight': 'ffn_gate.weight',
      'mlp.up_proj.weight': 'ffn_up.weight',
      'mlp.down_proj.weight': 'ffn_down.weight',
    };
    if (m[2]?.endsWith('rotary_emb.inv_freq')) return null;
    const name = block[m[2] ?? ''];
    if (name) return `blk.${m[1]}.${name}`;
  }
  return undefined;
}

/** The Llama hyperparameters the export needs, from config.json. */
export interface LlamaConfig {
  hiddenSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediateSize: number;
  vocabSize: number;
  contextLength: number;
  headDim: number | null;
  rmsNormEps: number;
  ropeTheta: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  tieWordEmbeddings: boolean;
}

/** The folder a checkpoint path lives in (the path itself when it is a folder). */
export async function checkpointFolder(path: string): Promise<string> {
  return (await stat(path)).isDirectory() ? path : dirname(path);
}

async function readJson(folder: string, name: string): Promise<unknown | null> {
  let path: string;
  try {
    path = resolveInside(folder, name, folder, name);
    const s = await stat(path);
    if (!s.isFile()) return null;
    if (s.size > MAX_JSON_BYTES) throw new QuantLensError('too-large', `${name} is ${s.size} bytes`, path);
  } catch (e) {
    if (e instanceof QuantLensError && e.code !== 'not-found') throw e;
    return null;
  }
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (e) {
    throw new QuantLensError('malformed', `${name} is not valid JSON (${(e as Error).message})`, path);
  }
}

export async function readLlamaConfig(folder: string): Promise<LlamaConfig> {
  const json = await readJson(folder, 'config.json');
  const where = `${folder}/config.json`;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new QuantLensError(
      'not-found',
      'the GGUF export of a Hugging Face checkpoint needs its config.json (the llama.* hyperparameters)',
      where,
    );
  }
  const c = json as Record<string, unknown>;
  const int = (key: string, fallback?: number): number => {
    const v = c[key];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
    if (fallback !== undefined) return fallback;
    throw new QuantLensError('malformed', `config.json has no positive integer "${key}"`, where);
  };
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const heads = int('num_attention_heads');
  const rope = c.rope_parameters;
  const ropeTheta =
    num(c.rope_theta) ??
    (typeof rope === 'object' && rope !== null ? num((rope as Record<string, unknown>).rope_theta) : null) ??
    10000;
  const scaling =
    c.rope_scaling ?? (typeof rope === 'object' && rope !== null ? (rope as Record<string, unknown>).rope_type : null);
  if (typeof scaling === 'object' && scaling !== null) {
    throw new QuantLensError(
      'unsupported',
      'config.json has rope_scaling: the GGUF export writes plain RoPE only (convert with llama.cpp for scaled RoPE)',
      where,
    );
  }
  if (typeof scaling === 'string' && scaling !== 'default') {
    throw new QuantLensError(
      'unsupported',
      `config.json's rope_type "${scaling}": the GGUF export writes plain RoPE only`,
      where,
    );
  }
  const firstId = (v: unknown): number | null =>
    typeof v === 'number' && Number.isSafeInteger(v) ? v : Array.isArray(v) && typeof v[0] === 'number' ? v[0] : null;
  return {
    hiddenSize: int('hidden_size'),
    layers: int('num_hidden_layers'),
    heads,
    kvHeads: int('num_key_value_heads', heads),
    intermediateSize: int('intermediate_size'),
    vocabSize: int('vocab_size'),
    contextLength: int('max_position_embeddings', 2048),
    headDim: num(c.head_dim),
    rmsNormEps: num(c.rms_norm_eps) ?? 1e-5,
    ropeTheta,
    bosTokenId: firstId(c.bos_token_id),
    eosTokenId: firstId(c.eos_token_id),
    tieWordEmbeddings: c.tie_word_embeddings === true,
  };
}

/** The `llama.*` keys convert_hf_to_gguf.py writes for a Llama model. */
export function llamaMetadata(c: LlamaConfig): [string, GgufMetadataValue][] {
  const headDim = c.headDim ?? c.hiddenSize / c.heads;
  const out: [string, GgufMetadataValue][] = [
    ['llama.vocab_size', { type: 'u32', value: c.vocabSize }],
    ['llama.context_length', { type: 'u32', value: c.contextLength }],
    ['llama.embedding_length', { type: 'u32', value: c.hiddenSize }],
    ['llama.block_count', { type: 'u32', value: c.layers }],
    ['llama.feed_forward_length', { type: 'u32', value: c.intermediateSize }],
    ['llama.rope.dimension_count', { type: 'u32', value: headDim }],
    ['llama.attention.head_count', { type: 'u32', value: c.heads }],
    ['llama.attention.head_count_kv', { type: 'u32', value: c.kvHeads }],
    ['llama.rope.freq_base', { type: 'f32', value: c.ropeTheta }],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: c.rmsNormEps }],
  ];
  if (c.headDim !== null) {
    out.push(['llama.attention.key_length', { type: 'u32', value: c.headDim }]);
    out.push(['llama.attention.value_length', { type: 'u32', value: c.headDim }]);
  }
  return out;
}

/**
 * The converter's q/k permutation (LlamaModel.permute): within each head, the rows of the two
 * rotary halves are interleaved, row h·d + s·d/2 + i going to h·d + 2i + s. `rows` are of
 * `rowLength` elements (or bytes), so quantized rows move whole.
 */
export function permuteHeadRows<T extends Float32Array | Uint8Array>(data: T, rows: number, heads: number): T {
  if (rows % (2 * heads) !== 0) {
    throw new QuantLensError('bad-argument', `${rows} rows do not split into ${heads} heads of two rotary halves`);
  }
  const rowLength = data.length / rows;
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const d = rows / heads;
  for (let h = 0; h < heads; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < d / 2; i++) {
        const from = h * d + s * (d / 2) + i;
        const to = h * d + 2 * i + s;
        out.set(data.subarray(from * rowLength, (from + 1) * rowLength), to * rowLength);
      }
    }
  }
  return out;
}

/** Heads whose rows the converter permutes for a tensor, or null when it leaves the rows alone. */
export function permutedHeads(hfName: string, c: LlamaConfig): number | null {
  if (/\.self_attn\.q_proj\.weight$/.test(hfName)) return c.heads;
  if (/\.self_attn\.k_proj\.weight$/.test(hfName)) return c.kvHeads;
  return null;
}

/**
 * tokenizer.json's byte-level BPE as GGUF `tokenizer.ggml.*` keys (model "gpt2", GPT-2's
 * pre-tokenizer), as the converter writes them; null when the folder has no tokenizer.json or the
 * tokenizer is of another kind (the notes say so).
 */
export async function bpeTokenizerMetadata(
  folder: string,
  c: LlamaConfig,
): Promise<{ metadata: [string, GgufMetadataValue][] } | { reason: string }> {
  const json = await readJson(folder, 'tokenizer.json');
  if (typeof json !== 'object' || json === null) return { reason: 'the checkpoint folder has no tokenizer.json' };
  const t = json as Record<string, unknown>;
  const model = t.model as Record<string, unknown> | undefined;
  const pre = t.pre_tokenizer as Record<string, unknown> | null | undefined;
  if (model?.type !== 'BPE' || pre?.type !== 'ByteLevel') {
    return {
      reason:
        "tokenizer.json is not a byte-level BPE (only those are converted; copy the tokenizer with llama.cpp's converter)",
    };
  }
  const vocab = model.vocab as Record<string, number> | undefined;
  if (!vocab) return { reason: 'tokenizer.json has no vocab' };
  const size = Math.max(c.vocabSize, ...Object.values(vocab).map((i) => i + 1));
  const tokens: string[] = Array.from({ length: size }, (_, i) => `[PAD${i}]`);
  const types: number[] = Array.from({ length: size }, () => 5); // unused until named
  for (const [text, id] of Object.entries(vocab)) {
    tokens[id] = text;
    types[id] = 1;
  }
  for (const a of (t.added_tokens as { id: number; content: string; special?: boolean }[] | undefined) ?? []) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4;
  }
  const merges = ((model.merges as (string | [string, string])[] | undefined) ?? []).map((m) =>
    typeof m === 'string' ? m : `${m[0]} ${m[1]}`,
  );
  const metadata: [string, GgufMetadataValue][] = [
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: 'gpt-2' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', values: tokens }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'i32', values: types }],
    ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', values: merges }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: c.bosTokenId !== null }],
    ['tokenizer.ggml.add_eos_token', { type: 'bool', value: false }],
  ];
  if (c.bosTokenId !== null) metadata.push(['tokenizer.ggml.bos_token_id', { type: 'u32', value: c.bosTokenId }]);
  if (c.eosTokenId !== null) metadata.push(['tokenizer.ggml.eos_token_id', { type: 'u32', value: c.eosTokenId }]);
  return { metadata };
}
