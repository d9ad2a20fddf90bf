/**
 * Finds the linear layers among a checkpoint's tensors from their names and shapes, and says
 * which of them the LQER papers quantize. Heuristics follow Hugging Face naming.
 */
import type { LinearLayer, TensorInfo } from './checkpoint';

/** Layer roles the papers quantize (decoder linears); everything else is listed but off by default. */
const QUANTIZED_ROLES = new Set([
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'out_proj',
  'qkv_proj',
  'dense',
  'gate_proj',
  'up_proj',
  'down_proj',
  'gate_up_proj',
  'fc1',
  'fc2',
  'c_attn',
  'c_proj',
  'c_fc',
  'query',
  'key',
  'value',
  'w1',
  'w2',
  'w3',
]);
const NOT_QUANTIZED = /(embed|wte|wpe|lm_head|norm|ln_|layernorm|classifier|score)/i;

export interface DiscoveryHints {
  architecture: string | null;
}

export function blockIndexOf(name: string): number | null {
  const m = /(?:^|\.)(?:layers|h|blocks|block|layer)\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

export function roleOf(name: string): string {
  const parts = name.replace(/\.weight$/, '').split('.');
  return parts[parts.length - 1] ?? name;
}

export function discoverLinearLayers(tensors: TensorInfo[], hints: DiscoveryHints): LinearLayer[] {
  const gpt2 = hints.architecture !== null && /gpt2/i.test(hints.architecture);
  const out: LinearLayer[] = [];
  for (const t of tensors) {
    if (t.shape.length !== 2 || !/weight$/.test(t.name)) continue;
    const role = roleOf(t.name);
    // GPT-2 stores its Conv1D weights as [in, out].
    const storedTransposed = gpt2 && /^(c_attn|c_proj|c_fc)$/.test(role);
    const [r, c] = t.shape as [number, number];
    out.push({
      name: t.name,
      shape: storedTransposed ? [c, r] : [r, c],
      storedTransposed,
      block: blockIndexOf(t.name),
      role,
      quantizedByDefault: QUANTIZED_ROLES.has(role) && !NOT_QUANTIZED.test(t.name),
      dtype: t.dtype,
      file: t.file,
    });
  }
  return out;
}
