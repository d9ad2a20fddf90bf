/**
 * Finds the linear layers among a checkpoint's tensors, names their role, and says which of them
 * the LQER papers quantize (the attention and MLP projections of every block; not embeddings,
 * lm_head, routers or classifier heads). Works from tensor names (Hugging Face, Meta, GGUF and
 * exporter conventions), the architecture and config.json; ONNX graphs add their own facts in
 * onnxCheckpoint.ts.
 */
import { elementCount, type LayerGroup, type LinearLayer, type TensorInfo } from './checkpoint';
import type { HfConfig } from './hfConfig';

/**
 * How the file lays out a weight before any per-name exception: PyTorch nn.Linear [out, in];
 * GGUF after reversing ggml's dims, also [out, in]; TensorFlow kernels [in, out].
 */
export type WeightConvention = 'torch' | 'gguf' | 'tf';

export interface DiscoveryHints {
  architecture: string | null;
  config?: HfConfig | null;
  convention?: WeightConvention;
}

export interface DiscoveryResult {
  /** The family recognised from the architecture or the tensor names, e.g. 'llama', 'gpt2'. */
  family: string | null;
  layers: LinearLayer[];
}

export interface NameAnalysis {
  role: string;
  group: LayerGroup;
  block: number | null;
  expert: number | null;
  quantizedByDefault: boolean;
}

type Rule = [role: string, group: LayerGroup, pattern: RegExp];

/**
 * Ordered: the first match wins, so context-specific rules (an attention block's c_proj or dense)
 * come before the general ones they would otherwise fall into (an MLP's c_proj, BERT's output.dense).
 */
const RULES: Rule[] = [
  [
    'embedding',
    'embedding',
    /(^|\.)(embed_tokens|wte|wpe|word_embeddings|position_embeddings|token_type_embeddings|embed_positions|token_embd|tok_embeddings|embed_in|shared|embeddings)$/,
  ],
  ['lm_head', 'head', /(^|\.)(lm_head|embed_out)$|^output$/],
  [
    'router',
    'router',
    /(^|\.)(block_sparse_moe|mlp|moe|feed_forward)\.(gate|router)$|ffn_gate_inp(_shexp)?$|(^|\.)router(\.(layer|linear|classifier))?$|shared_expert_gate$/,
  ],
  ['qkv_proj', 'attention', /(^|\.)(qkv_proj|query_key_value|c_attn|Wqkv|attn_qkv|qkv)$/],
  ['q_proj', 'attention', /(^|\.)(q_proj|query|wq|attn_q|q_attn)$|(attn|attention|SelfAttention|EncDecAttention)\.q$/],
  ['k_proj', 'attention', /(^|\.)(k_proj|key|wk|attn_k)$|(attn|attention|SelfAttention|EncDecAttention)\.k$/],
  ['v_proj', 'attention', /(^|\.)(v_proj|value|wv|attn_v)$|(attn|attention|SelfAttention|EncDecAttention)\.v$/],
  [
    'o_proj',
    'attention',
    /(^|\.)(o_proj|out_proj|wo|attn_output)$|attention\.output\.dense$|(self_attn|attention|self_attention|attn|SelfAttention|EncDecAttention)\.(dense|c_proj|o)$/,
  ],
  ['gate_up_proj', 'mlp', /(^|\.)(gate_up_proj|ffn_gate_up(_exps)?)$/],
  ['gate_proj', 'mlp', /(^|\.)(gate_proj|ffn_gate(_exps|_shexp)?|wi_0)$|(experts\.\d+|feed_forward)\.w1$/],
  ['up_proj', 'mlp', /(^|\.)(up_proj|ffn_up(_exps|_shexp)?|wi_1)$|(experts\.\d+|feed_forward)\.w3$/],
  [
    'down_proj',
    'mlp',
    /(^|\.)(down_proj|ffn_down(_exps|_shexp)?)$|(experts\.\d+|feed_forward)\.w2$|DenseReluDense\.wo$/,
  ],
  ['fc1', 'mlp', /(^|\.)(fc1|c_fc|dense_h_to_4h|fc_in|lin1|wi)$|intermediate\.dense$|mlp\.(dense_1|fc_1)$/],
  ['fc2', 'mlp', /(^|\.)(fc2|c_proj|dense_4h_to_h|fc_out|lin2)$|(^|\.)output\.dense$|mlp\.(dense_2|fc_2)$/],
  ['pooler', 'head', /(^|\.)pooler\.dense$/],
  ['classifier', 'head', /(^|\.)(classifier|score|qa_outputs|cls\.predictions\.transform\.dense|cls\.[\w.]+)$/],
];

const BLOCK = /(?:^|\.)(?:layers|layer|h|blocks|block|blk|decoder_layers|encoder_layers)\.(\d+)(?:\.|$)/;
const EXPERT = /(?:^|\.)experts\.(\d+)(?:\.|$)/;
/** Suffixes that name a weight matrix; biases, scales and quantization companions are not layers. */
const WEIGHT_SUFFIX = /(?:^|[./])(weight|kernel|w_0|w)$/;
const NOT_A_WEIGHT = /(bias|scale|scales|zero_point|zeros|qzeros|g_idx|inv_freq|mask|running_mean|running_var)$/i;
/** 3-D tensors that stack one matrix per expert (transformers ≥ 5 in memory, GGUF _exps). */
const STACKED_EXPERTS = /(^|\.)(experts\.(gate_up_proj|gate_proj|up_proj|down_proj)|ffn_(gate|up|down|gate_up)_exps)$/;

const ROLE_ORDER = [
  'embedding',
  'q_proj',
  'k_proj',
  'v_proj',
  'qkv_proj',
  'o_proj',
  'router',
  'gate_proj',
  'up_proj',
  'gate_up_proj',
  'fc1',
  'down_proj',
  'fc2',
  'linear',
  'conv1x1',
  'pooler',
  'classifier',
  'lm_head',
];

/** A tensor name without its parameter suffix and with '/' or ':' separators turned into dots. */
export function baseName(name: string): string {
  return name
    .replace(/:\d+$/, '')
    .replace(/[/:]+/g, '.')
    .replace(/^\.+/, '')
    .replace(/\.(weight|kernel|w_0|w)$/, '');
}

/** Role, group and block of a weight from its (base) name alone. */
export function analyseName(name: string): NameAnalysis {
  const base = baseName(name);
  const block = BLOCK.exec(base);
  const expert = EXPERT.exec(base);
  const inExperts = expert !== null || /_exps$|(^|\.)experts\./.test(base);
  for (const [role, group, pattern] of RULES) {
    if (!pattern.test(base)) continue;
    const g: LayerGroup = group === 'mlp' && inExperts ? 'expert' : group;
    return {
      role,
      group: g,
      block: block ? Number(block[1]) : null,
      expert: expert ? Number(expert[1]) : null,
      quantizedByDefault: g === 'attention' || g === 'mlp' || g === 'expert',
    };
  }
  return {
    role: 'linear',
    group: 'other',
    block: block ? Number(block[1]) : null,
    expert: expert ? Number(expert[1]) : null,
    // Unknown architectures: every 2-D weight is a candidate, except what looks like a norm.
    quantizedByDefault: !/norm|ln_|layernorm/i.test(base),
  };
}

interface FamilyRule {
  family: string;
  architecture: RegExp;
  /** Tensor names that give the family away when no architecture is known. */
  names?: RegExp;
}

/** Ordered: MoE and specific names before the generic decoder families they resemble. */
const FAMILIES: FamilyRule[] = [
  { family: 'mixtral', architecture: /mixtral/i, names: /block_sparse_moe\.experts\.\d+\.w1/ },
  { family: 'qwen-moe', architecture: /qwen\d*_?moe/i, names: /mlp\.shared_expert\./ },
  { family: 'moe', architecture: /moe|deepseek_?v[23]/i, names: /mlp\.experts\.(\d+\.)?(gate|up|down|gate_up)_proj/ },
  { family: 'gpt2', architecture: /^(gpt2|openai-gpt|openaigpt)|GPT2|OpenAIGPT/, names: /(^|\.)h\.\d+\.attn\.c_attn/ },
  { family: 'opt', architecture: /^opt/i, names: /decoder\.layers\.\d+\.fc1/ },
  { family: 'bert', architecture: /bert|roberta|electra/i, names: /encoder\.layer\.\d+\.attention\.self\.query/ },
  { family: 'phi3', architecture: /phi3|phi-3|phi4/i, names: /self_attn\.qkv_proj.*|mlp\.gate_up_proj/ },
  { family: 'phi', architecture: /^phi/i, names: /self_attn\.dense\b|layers\.\d+\.mlp\.fc1/ },
  { family: 'gemma', architecture: /gemma/i },
  { family: 'qwen', architecture: /qwen/i },
  { family: 'mistral', architecture: /mistral/i },
  { family: 'gpt-neox', architecture: /neox|pythia/i, names: /gpt_neox\.layers/ },
  { family: 'falcon', architecture: /falcon|refinedweb/i, names: /self_attention\.query_key_value/ },
  { family: 'bloom', architecture: /bloom/i },
  {
    family: 'llama',
    architecture: /llama/i,
    names: /layers\.\d+\.(self_attn\.q_proj|mlp\.gate_proj)|blk\.\d+\.attn_q/,
  },
];

export function detectFamily(architecture: string | null, names: readonly string[]): string | null {
  if (architecture) {
    for (const f of FAMILIES) if (f.architecture.test(architecture)) return f.family;
  }
  for (const f of FAMILIES) {
    const pattern = f.names;
    if (pattern && names.some((n) => pattern.test(n))) return f.family;
  }
  return null;
}

const FLOAT_DTYPE = /^(F|BF|Q|IQ|TQ|MXFP|float|bfloat|half|double)/i;

function isCandidate(t: TensorInfo): boolean {
  if (!FLOAT_DTYPE.test(t.dtype)) return false;
  if (elementCount(t.shape) === 0) return false;
  const base = t.name.replace(/:\d+$/, '');
  if (t.shape.length === 3) return STACKED_EXPERTS.test(baseName(base)) || STACKED_EXPERTS.test(base);
  if (t.shape.length !== 2) return false;
  if (NOT_A_WEIGHT.test(base)) return false;
  return WEIGHT_SUFFIX.test(base) || RULES.some(([, , p]) => p.test(baseName(base)));
}

/** GPT-2 and OpenAI GPT store their Conv1D weights [in, out]; the config's width confirms it. */
function isConv1D(role: string, base: string, family: string | null): boolean {
  if (family !== 'gpt2') return false;
  return /(^|\.)(c_attn|c_proj|c_fc|q_attn)$/.test(base) && role !== 'lm_head';
}

function storedTransposed(
  t: TensorInfo,
  analysis: NameAnalysis,
  family: string | null,
  hints: DiscoveryHints,
): boolean {
  const convention = hints.convention ?? 'torch';
  const h = hints.config?.hiddenSize ?? null;
  const [a, b] = t.shape.length === 3 ? [t.shape[1]!, t.shape[2]!] : [t.shape[0]!, t.shape[1]!];
  if (t.shape.length === 3 && h !== null && a !== b) {
    // Stacked experts: the input of gate/up and the output of down is the hidden width.
    if (analysis.role === 'down_proj') return b === h && a !== h;
    return a === h && b !== h;
  }
  if (convention === 'tf') return /kernel$/.test(t.name.replace(/:\d+$/, ''));
  if (convention === 'gguf') return false;
  if (isConv1D(analysis.role, baseName(t.name), family)) {
    // Stored [in, out]. With the config's width the rows say it for sure: c_attn and c_fc take
    // the hidden width in; c_proj gives it out.
    if (h === null || a === b) return true;
    const givesHiddenOut = analysis.role === 'o_proj' || analysis.role === 'fc2';
    return givesHiddenOut ? b === h : a === h;
  }
  return false;
}

export function compareLayers(x: LinearLayer, y: LinearLayer): number {
  const rank = (l: LinearLayer) => (l.role === 'embedding' ? -1 : l.block === null ? (l.group === 'head' ? 2 : 1) : 0);
  return (
    rank(x) - rank(y) ||
    (x.block ?? 0) - (y.block ?? 0) ||
    (x.expert ?? -1) - (y.expert ?? -1) ||
    ROLE_ORDER.indexOf(x.role) - ROLE_ORDER.indexOf(y.role) ||
    x.name.localeCompare(y.name, 'en', { numeric: true })
  );
}

export function discoverLinearLayers(tensors: readonly TensorInfo[], hints: DiscoveryHints): DiscoveryResult {
  const family = detectFamily(
    hints.architecture ?? hints.config?.architecture ?? hints.config?.modelType ?? null,
    tensors.map((t) => t.name),
  );
  const layers: LinearLayer[] = [];
  for (const t of tensors) {
    if (!isCandidate(t)) continue;
    const analysis = analyseName(t.name);
    const transposed = storedTransposed(t, analysis, family, hints);
    const [r, c] = t.shape.length === 3 ? [t.shape[1]!, t.shape[2]!] : [t.shape[0]!, t.shape[1]!];
    const shape: [number, number] = transposed ? [c, r] : [r, c];
    const common = {
      shape,
      storedTransposed: transposed,
      block: analysis.block,
      role: analysis.role,
      group: analysis.group,
      quantizedByDefault: analysis.quantizedByDefault,
      dtype: t.dtype,
      file: t.file,
    };
    if (t.shape.length === 3) {
      for (let e = 0; e < t.shape[0]!; e++) {
        layers.push({ name: `${t.name}[${e}]`, tensor: t.name, expert: e, ...common, group: 'expert' });
      }
    } else {
      layers.push({ name: t.name, ...common, ...(analysis.expert !== null ? { expert: analysis.expert } : {}) });
    }
  }
  layers.sort(compareLayers);
  return { family, layers };
}
