/**
 * config.json beside a Hugging Face checkpoint: the architecture name and the sizes that tell a
 * weight's orientation when its name does not (GPT-2's Conv1D, stacked expert tensors).
 */
import { readFile, stat } from 'node:fs/promises';
import { resolveInside } from './pathSafety';

/** Real configs are a few KB; a bigger one is not a config and is not read. */
const MAX_CONFIG_BYTES = 4 << 20;

export interface HfConfig {
  architecture: string | null;
  modelType: string | null;
  hiddenSize: number | null;
  intermediateSize: number | null;
  layers: number | null;
  vocabSize: number | null;
  experts: number | null;
  tieWordEmbeddings: boolean | null;
}

function firstNumber(o: Record<string, unknown>, keys: string[]): number | null {
  for (const k of keys) {
    const v = o[k];
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return v;
  }
  return null;
}

export function parseHfConfig(json: unknown): HfConfig | null {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return null;
  const top = json as Record<string, unknown>;
  // Multimodal configs keep the language model's sizes under text_config.
  const text = top.text_config;
  const o = typeof text === 'object' && text !== null && !Array.isArray(text) ? { ...top, ...text } : top;
  const archs = top.architectures;
  return {
    architecture: Array.isArray(archs) && typeof archs[0] === 'string' ? archs[0] : null,
    modelType: typeof top.model_type === 'string' ? top.model_type : null,
    hiddenSize: firstNumber(o, ['hidden_size', 'n_embd', 'd_model', 'dim']),
    intermediateSize: firstNumber(o, ['intermediate_size', 'n_inner', 'ffn_dim', 'd_ff', 'moe_intermediate_size']),
    layers: firstNumber(o, ['num_hidden_layers', 'n_layer', 'num_layers']),
    vocabSize: firstNumber(o, ['vocab_size']),
    experts: firstNumber(o, ['num_local_experts', 'num_experts', 'n_routed_experts']),
    tieWordEmbeddings: typeof o.tie_word_embeddings === 'boolean' ? o.tie_word_embeddings : null,
  };
}

/** Reads config.json in `folder`; a missing or unreadable config is not an error, just no hints. */
export async function readHfConfig(folder: string): Promise<HfConfig | null> {
  try {
    const path = resolveInside(folder, 'config.json', folder, 'config');
    const s = await stat(path);
    if (!s.isFile() || s.size > MAX_CONFIG_BYTES) return null;
    return parseHfConfig(JSON.parse(await readFile(path, 'utf8')));
  } catch {
    return null;
  }
}

/** The config's facts as display metadata. */
export function configMetadata(c: HfConfig | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (!c) return out;
  const put = (k: string, v: string | number | boolean | null) => {
    if (v !== null) out[`config.${k}`] = String(v);
  };
  put('architecture', c.architecture);
  put('model_type', c.modelType);
  put('hidden_size', c.hiddenSize);
  put('intermediate_size', c.intermediateSize);
  put('num_hidden_layers', c.layers);
  put('vocab_size', c.vocabSize);
  put('num_experts', c.experts);
  put('tie_word_embeddings', c.tieWordEmbeddings);
  return out;
}
