import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/engine/readers/open';
import { Unpickler } from '../../../src/engine/readers/pytorch/pickle';
import { assertSameValues, fixture, loadReference, rejectsWith, tempDir, type ValueReference } from './helpers';
import { pickleBytes, zipBytes } from './zipBytes';

test('torch.save of a Llama state dict: every tensor and layer matches torch', async () => {
  const ref = loadReference(fixture('torch/reference.json'));
  const ckpt = await openCheckpoint(fixture('torch/pytorch_model.bin'));
  try {
    assert.equal(ckpt.format, 'pytorch');
    assert.equal(ckpt.architecture, 'LlamaForCausalLM');
    assert.equal(ckpt.tensors.length, Object.keys(ref.tensors).length);
    for (const [name, r] of Object.entries(ref.tensors)) assertSameValues(await ckpt.readTensor(name), r, name);
    for (const [name, r] of Object.entries(ref.layers)) assertSameValues((await ckpt.readWeight(name)).data, r, name);
    const q = ckpt.linearLayers.find((l) => l.name === 'model.layers.0.self_attn.q_proj.weight')!;
    assert.deepEqual([q.dtype, q.shape, q.role, q.block], ['float16', [64, 64], 'q_proj', 0]);
    // Tensors are read in place: the offset points into the zip's stored entry.
    assert.ok(ckpt.tensors.every((t) => typeof t.offset === 'number' && t.offset % 64 === 0));
  } finally {
    await ckpt.close();
  }
});

test('views with strides and offsets, float8, uint16, parameters and nested dicts', async () => {
  const ref = JSON.parse(readFileSync(fixture('torch/odd-reference.json'), 'utf8')) as Record<string, ValueReference>;
  const ckpt = await openCheckpoint(fixture('torch/odd.pt'));
  try {
    assert.deepEqual(ckpt.tensors.map((t) => t.name).sort(), Object.keys(ref).sort());
    for (const [name, r] of Object.entries(ref)) {
      assert.deepEqual(ckpt.tensors.find((t) => t.name === name)!.shape, r.shape, name);
      assertSameValues(await ckpt.readTensor(name), r, name);
    }
    // A transposed view (strides [1, 8]) read as a linear layer.
    const up = await ckpt.readWeight('model.layers.0.mlp.up_proj.weight');
    assert.deepEqual([up.out, up.in], [8, 6]);
    assertSameValues(up.data, ref['model.layers.0.mlp.up_proj.weight']!, 'up_proj');
    assert.deepEqual(ckpt.tensors.find((t) => t.name === 'model.fp8')!.dtype, 'float8_e4m3fn');
  } finally {
    await ckpt.close();
  }
});

test('a sharded .bin checkpoint opens through pytorch_model.bin.index.json', async () => {
  const ref = loadReference(fixture('torch-sharded/reference.json'));
  for (const path of [fixture('torch-sharded'), fixture('torch-sharded/pytorch_model.bin.index.json')]) {
    const ckpt = await openCheckpoint(path);
    assert.equal(ckpt.files.length, 2);
    assert.equal(ckpt.architecture, 'LlamaForCausalLM');
    for (const [name, r] of Object.entries(ref.tensors)) assertSameValues(await ckpt.readTensor(name), r, name);
    await ckpt.close();
  }
});

test('pickles that reach for os.system, builtins.eval or subprocess are refused and nothing runs', async () => {
  const marker = '/tmp/quant-lens-pwned';
  for (const [file, what] of [
    ['os_system.pt', /references (os|posix)\.system/],
    ['builtins_eval.pt', /references builtins\.eval/],
    ['subprocess.pt', /references (subprocess|commands)\.Popen/], // protocol 2 writes Python 2 module names
  ] as const) {
    const path = fixture('hostile', file);
    await rejectsWith(() => openCheckpoint(path), 'unsafe', what, path);
  }
  assert.equal(existsSync(marker), false);
  const legacy = fixture('hostile/legacy.pt');
  await rejectsWith(() => openCheckpoint(legacy), 'unsupported', /legacy \(pre-1\.6\)/, legacy);
});

const str = (s: string) => {
  const b = new TextEncoder().encode(s);
  return [0x58, b.length & 0xff, (b.length >> 8) & 0xff, 0, 0, ...b];
};

function load(...parts: Parameters<typeof pickleBytes>) {
  return new Unpickler(pickleBytes(...parts), 'test.pt').load();
}

test('the unpickler only resolves whitelisted globals and never calls anything else', () => {
  const unsafe = (fn: () => unknown, what: RegExp) =>
    assert.throws(fn, (e: Error & { code?: string }) => e.code === 'unsafe' && what.test(e.message));
  const malformed = (fn: () => unknown, what: RegExp) =>
    assert.throws(fn, (e: Error & { code?: string }) => e.code === 'malformed' && what.test(e.message));
  unsafe(() => load(0x80, 2, 'cos\nsystem\n', str('id'), 0x85, 'R.'), /os\.system/);
  unsafe(() => load(0x80, 4, str('builtins'), str('eval'), 0x93, str('1'), 0x85, 'R.'), /builtins\.eval/);
  unsafe(() => load(0x80, 4, str('builtins'), str('getattr'), 0x93, '.'), /builtins\.getattr/);
  unsafe(() => load(0x80, 2, 'ctorch\n_C\n.'), /torch\._C/);
  unsafe(() => load(0x80, 2, 'ctorch._utils\n_rebuild_tensor_v2_evil\n.'), /_rebuild_tensor_v2_evil/);
  // A whitelisted name that is data (a dtype) is still never called.
  unsafe(() => load(0x80, 2, 'ctorch\nfloat32\n', ')R.'), /calls torch\.float32/);
  unsafe(() => load(0x80, 2, '(', 'i', 'os\nsystem\n', '.'), /INST/);
  unsafe(() => load(0x80, 2, 0x82, 1, '.'), /EXT1/);
  malformed(() => load(0x80, 2, 0xff), /unknown or unsupported pickle opcode 0xff/);
  malformed(() => load(0x80, 2, 'h', 7, '.'), /memo entry 7/);
  malformed(() => load(0x80, 2, '}'), /ends without STOP/);
  malformed(() => load(0x80, 2, 't.'), /no MARK/);
  malformed(() => load(0x80, 2, 'X', [0xff, 0xff, 0xff, 0x7f], 'abc'), /ends unexpectedly/);
  malformed(() => load(0x80, 2, 0x8d, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], '.'), /exceeds the pickle/);
  // Deep nesting and self-reference build no recursion and finish.
  const deep = new Uint8Array(2 + 200_000);
  deep.set([0x80, 2]);
  deep.fill(0x5d, 2, 100_002); // EMPTY_LIST × 100 000
  deep.fill(0x61, 100_002, 200_001); // APPEND × 99 999
  deep[200_001] = 0x2e; // STOP
  assert.ok(new Unpickler(deep, 'deep.pt').load());
  assert.ok(load(0x80, 2, ']', 'q', 0, 'h', 0, 'a.'));
});

/** A torch-style archive with a state dict {"w": FloatStorage tensor [2, 2]} unless told otherwise. */
function archive(
  opts: {
    storageBytes?: number;
    size?: [number, number];
    extra?: { name: string; data: Uint8Array }[];
    noStorage?: boolean;
  } = {},
): Uint8Array {
  const [r, c] = opts.size ?? [2, 2];
  const pkl = pickleBytes(
    0x80,
    2,
    '}',
    '(',
    ...str('model.layers.0.self_attn.q_proj.weight'),
    'ctorch._utils\n_rebuild_tensor_v2\n',
    '(',
    '(',
    ...str('storage'),
    'ctorch\nFloatStorage\n',
    ...str('0'),
    ...str('cpu'),
    'K',
    4,
    't',
    'Q',
    'K',
    0,
    'K',
    r,
    'K',
    c,
    0x86,
    'K',
    c,
    'K',
    1,
    0x86,
    0x89,
    'ccollections\nOrderedDict\n',
    ')R',
    't',
    'R',
    'u.',
  );
  const storage = new Float32Array(Math.max(1, (opts.storageBytes ?? 16) / 4)).map((_, i) => i + 1);
  return zipBytes([
    { name: 'a/data.pkl', data: pkl },
    ...(opts.noStorage
      ? []
      : [{ name: 'a/data/0', data: new Uint8Array(storage.buffer).slice(0, opts.storageBytes ?? 16) }]),
    { name: 'a/version', data: new TextEncoder().encode('3\n') },
    ...(opts.extra ?? []),
  ]);
}

async function rejectsArchive(
  bytes: Uint8Array,
  code: Parameters<typeof rejectsWith>[1],
  message: RegExp,
): Promise<void> {
  const path = join(tempDir(), 'bad.pt');
  writeFileSync(path, bytes);
  await rejectsWith(() => openCheckpoint(path), code, message, path);
}

test('a hand-made archive reads, and damaged ones fail with a typed error naming the file', async () => {
  const path = join(tempDir(), 'ok.pt');
  writeFileSync(path, archive());
  const ckpt = await openCheckpoint(path);
  assert.deepEqual([...(await ckpt.readWeight('model.layers.0.self_attn.q_proj.weight')).data], [1, 2, 3, 4]);
  await ckpt.close();

  await rejectsArchive(archive({ storageBytes: 12 }), 'malformed', /should hold 16 bytes but its entry has 12/);
  await rejectsArchive(archive({ noStorage: true }), 'malformed', /storage a\/data\/0 is missing/);
  await rejectsArchive(
    archive({ extra: [{ name: 'a/code/__torch__.py', data: new Uint8Array(1) }] }),
    'unsupported',
    /TorchScript/,
  );
  await rejectsArchive(
    archive({ extra: [{ name: 'a/byteorder', data: new TextEncoder().encode('big') }] }),
    'unsupported',
    /big-endian/,
  );
  const good = archive();
  await rejectsArchive(good.slice(0, good.length - 30), 'malformed', /end-of-central-directory|damaged/);
  await rejectsArchive(good.slice(0, 100), 'malformed', /end-of-central-directory/);
  await rejectsArchive(
    zipBytes([{ name: 'a/other.pkl', data: new Uint8Array(4) }]),
    'malformed',
    /no <name>\/data\.pkl/,
  );
  const bigCd = archive();
  new DataView(bigCd.buffer).setUint32(bigCd.length - 22 + 12, 0x7fffffff, true); // central directory size
  await rejectsArchive(bigCd, 'malformed', /outside the file/);
});
