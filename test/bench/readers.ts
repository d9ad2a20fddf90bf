/**
 * Reader benchmark: a Llama-2-7B-shaped checkpoint (32 blocks, hidden 4096, MLP 11008, vocab
 * 32000; 6.7 B parameters, 13.5 GB of BF16 in three safetensors shards with an index and
 * config.json), the same shapes as a Q4_K GGUF and as an ONNX graph with external data, and a
 * 1.2 GB ONNX file with its weights inline, all generated as sparse files so they cost no disk.
 * A fresh process opens each, lists its layers and reads the largest layer; the targets are
 * listing in under 1 s and 300 MB, and a layer read costing memory in proportion to the layer.
 *
 *   node --import tsx test/bench/readers.ts [--keep]
 */
import { buildSync } from 'esbuild';
import { OnnxType, writeNode, writeValueInfo } from '../../src/engine/onnx/builder';
import { ProtoWriter } from '../../src/engine/protobuf/writer';
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HIDDEN = 4096;
const INTER = 11008;
const VOCAB = 32000;
const BLOCKS = 32;

function llamaTensors(): { name: string; shape: number[] }[] {
  const out = [{ name: 'model.embed_tokens.weight', shape: [VOCAB, HIDDEN] }];
  for (let b = 0; b < BLOCKS; b++) {
    const p = `model.layers.${b}`;
    for (const q of ['q_proj', 'k_proj', 'v_proj', 'o_proj'])
      out.push({ name: `${p}.self_attn.${q}.weight`, shape: [HIDDEN, HIDDEN] });
    out.push({ name: `${p}.mlp.gate_proj.weight`, shape: [INTER, HIDDEN] });
    out.push({ name: `${p}.mlp.up_proj.weight`, shape: [INTER, HIDDEN] });
    out.push({ name: `${p}.mlp.down_proj.weight`, shape: [HIDDEN, INTER] });
    out.push({ name: `${p}.input_layernorm.weight`, shape: [HIDDEN] });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [HIDDEN] });
  }
  out.push({ name: 'model.norm.weight', shape: [HIDDEN] }, { name: 'lm_head.weight', shape: [VOCAB, HIDDEN] });
  return out;
}

/** Writes a header and extends the file to its full size without writing the data (a sparse file). */
function sparseFile(path: string, header: Uint8Array, total: number): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header);
    ftruncateSync(fd, total);
  } finally {
    closeSync(fd);
  }
}

function makeSafetensors(dir: string): number {
  const tensors = llamaTensors();
  const shardBytes = 5e9;
  const shards: { name: string; shape: number[] }[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 2);
    if (size + bytes > shardBytes) {
      shards.push([]);
      size = 0;
    }
    shards.at(-1)!.push(t);
    size += bytes;
  }
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((list, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
    let offset = 0;
    for (const t of list) {
      const bytes = t.shape.reduce((a, b) => a * b, 2);
      header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [offset, offset + bytes] };
      offset += bytes;
      weightMap[t.name] = file;
    }
    let json = JSON.stringify(header);
    while ((8 + json.length) % 8) json += ' ';
    const head = new Uint8Array(8 + json.length);
    new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
    head.set(new TextEncoder().encode(json), 8);
    sparseFile(join(dir, file), head, head.length + offset);
    total += offset;
  });
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
  );
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: HIDDEN,
      intermediate_size: INTER,
      num_hidden_layers: BLOCKS,
      vocab_size: VOCAB,
    }),
  );
  return shards.length;
}

/** The same shapes as GGUF v3, every 2-D weight Q4_K (144 bytes per 256 values), norms F32. */
function makeGguf(path: string): void {
  const parts: number[] = [];
  const u32 = (v: number) => parts.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  const u64 = (v: number) => {
    u32(v % 2 ** 32);
    u32(Math.floor(v / 2 ** 32));
  };
  const str = (s: string) => {
    const b = new TextEncoder().encode(s);
    u64(b.length);
    parts.push(...b);
  };
  const names = llamaTensors().map((t) => ({
    name: t.name
      .replace('model.embed_tokens', 'token_embd')
      .replace('lm_head', 'output')
      .replace('model.norm', 'output_norm')
      .replace(/^model\.layers\.(\d+)\./, 'blk.$1.')
      .replace('self_attn.q_proj', 'attn_q')
      .replace('self_attn.k_proj', 'attn_k')
      .replace('self_attn.v_proj', 'attn_v')
      .replace('self_attn.o_proj', 'attn_output')
      .replace('mlp.gate_proj', 'ffn_gate')
      .replace('mlp.up_proj', 'ffn_up')
      .replace('mlp.down_proj', 'ffn_down')
      .replace('input_layernorm', 'attn_norm')
      .replace('post_attention_layernorm', 'ffn_norm'),
    shape: t.shape,
  }));
  parts.push(0x47, 0x47, 0x55, 0x46);
  u32(3);
  u64(names.length);
  u64(1);
  str('general.architecture');
  u32(8);
  str('llama');
  let offset = 0;
  for (const t of names) {
    str(t.name);
    u32(t.shape.length);
    for (const d of [...t.shape].reverse()) u64(d);
    const quant = t.shape.length === 2;
    u32(quant ? 12 : 0);
    u64(offset);
    const n = t.shape.reduce((a, b) => a * b, 1);
    offset += quant ? (n / 256) * 144 : n * 4;
    offset = Math.ceil(offset / 32) * 32;
  }
  while (parts.length % 32) parts.push(0);
  sparseFile(path, Uint8Array.from(parts), parts.length + offset);
}

/** Linear weights of the Llama shapes as an exporter lays them out for MatMul: [in, out]. */
function onnxWeights(blocks: number): { name: string; dims: number[] }[] {
  return llamaTensors()
    .filter(
      (t) =>
        t.shape.length === 2 && !t.name.includes('embed') && Number(/layers\.(\d+)\./.exec(t.name)?.[1] ?? 0) < blocks,
    )
    .map((t) => ({ name: t.name, dims: [t.shape[1]!, t.shape[0]!] }));
}

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n = Math.floor(n / 0x80)) out.push((n % 0x80) | 0x80);
  out.push(n);
  return out;
}

/** Bytes, or a hole of that many zero bytes left sparse. */
type Piece = Uint8Array | number;

function writePieces(path: string, pieces: Piece[]): void {
  const fd = openSync(path, 'w');
  let at = 0;
  try {
    for (const p of pieces) {
      if (typeof p === 'number') at += p;
      else {
        writeSync(fd, p, 0, p.length, at);
        at += p.length;
      }
    }
    ftruncateSync(fd, at);
  } finally {
    closeSync(fd);
  }
}

const pieceLength = (p: Piece) => (typeof p === 'number' ? p : p.length);

/**
 * An ONNX model of MatMul nodes over the given weights. External: the weights live in
 * model.onnx.data (sparse), as in real 7B exports. Inline: raw_data in the protobuf itself (sparse
 * holes), which the reader must skip without reading.
 */
function makeOnnx(path: string, blocks: number, inline: boolean): void {
  const weights = onnxWeights(blocks);
  const graph: Piece[] = [];
  const msg = (build: (w: ProtoWriter) => void) => {
    const w = new ProtoWriter();
    build(w);
    return w.finish();
  };
  weights.forEach((t, i) => {
    graph.push(
      msg((w) =>
        w.message(1, (n) =>
          writeNode(n, {
            op: 'MatMul',
            inputs: [i ? `h${i - 1}` : 'x', t.name],
            outputs: [`h${i}`],
            name: `/${t.name}/MatMul`,
          }),
        ),
      ),
    );
  });
  let dataOffset = 0;
  for (const t of weights) {
    const bytes = t.dims[0]! * t.dims[1]! * 2;
    const head = msg((w) => {
      for (const d of t.dims) w.varint(1, d);
      w.varint(2, OnnxType.FLOAT16).string(8, t.name);
      if (!inline) {
        w.message(13, (e) => e.string(1, 'location').string(2, 'model.onnx.data'));
        w.message(13, (e) => e.string(1, 'offset').string(2, String(dataOffset)));
        w.message(13, (e) => e.string(1, 'length').string(2, String(bytes)));
        w.varint(14, 1);
      }
    });
    dataOffset += bytes;
    if (inline) {
      const rawKey = Uint8Array.from([0x4a, ...varint(bytes)]);
      const tensorLength = head.length + rawKey.length + bytes;
      graph.push(Uint8Array.from([0x2a, ...varint(tensorLength)]), head, rawKey, bytes);
    } else graph.push(msg((w) => w.bytes(5, head)));
  }
  graph.push(
    msg((w) => w.message(11, (v) => writeValueInfo(v, { name: 'x', elemType: OnnxType.FLOAT16, dims: ['n', HIDDEN] }))),
  );
  graph.push(
    msg((w) => w.message(12, (v) => writeValueInfo(v, { name: `h${weights.length - 1}`, elemType: OnnxType.FLOAT16 }))),
  );
  const graphLength = graph.reduce<number>((a, p) => a + pieceLength(p), 0);
  const head = msg((w) => w.varint(1, 8).string(2, 'quant-lens bench'));
  const opset = msg((w) => w.message(8, (o) => o.string(1, '').varint(2, 17)));
  writePieces(path, [head, Uint8Array.from([0x3a, ...varint(graphLength)]), ...graph, opset]);
  if (!inline) writePieces(join(path, '..', 'model.onnx.data'), [dataOffset]);
}

function probe(script: string, path: string, layers: string[]): Record<string, unknown> {
  const r = spawnSync(process.execPath, [script, path, ...layers], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

function main(): void {
  const dir = mkdtempSync(join(tmpdir(), 'ql-bench-readers-'));
  const script = join(dir, 'probe.js');
  buildSync({
    entryPoints: [join(import.meta.dirname, 'readersProbe.ts')],
    outfile: script,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'error',
  });
  const st = join(dir, 'llama-7b');
  const gguf = join(dir, 'llama-7b-Q4_K.gguf');
  const onnxExternal = join(dir, 'onnx-external');
  const onnxInline = join(dir, 'onnx-inline.onnx');
  try {
    mkdirSync(st);
    mkdirSync(onnxExternal);
    const shards = makeSafetensors(st);
    makeGguf(gguf);
    makeOnnx(join(onnxExternal, 'model.onnx'), BLOCKS, false);
    makeOnnx(onnxInline, 3, true);
    const results = [
      probe(script, join(st, 'model.safetensors.index.json'), [
        'model.layers.0.mlp.down_proj.weight',
        'model.layers.31.self_attn.q_proj.weight',
      ]),
      probe(script, gguf, ['blk.0.ffn_down.weight']),
      probe(script, join(onnxExternal, 'model.onnx'), ['model.layers.0.mlp.down_proj.weight']),
      probe(script, onnxInline, ['model.layers.2.mlp.down_proj.weight']),
    ];
    console.log(`7B-shaped checkpoints (${shards} safetensors shards, sparse files in ${dir}):`);
    for (const r of results) console.log(JSON.stringify(r, null, 1));
    const s = results[0] as { openMs: number; afterOpen: { rssMB: number; maxRssMB: number } };
    const ok = s.openMs < 1000 && s.afterOpen.maxRssMB < 300;
    console.log(
      `safetensors targets (open < 1000 ms, peak RSS < 300 MB): ${ok ? 'met' : 'NOT met'} — ${s.openMs} ms, ${s.afterOpen.maxRssMB} MB`,
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    if (!process.argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
  }
}

main();
