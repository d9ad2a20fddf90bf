/**
 * llama.cpp's weight types against ggml itself: the bytes of quantize_<type> (reference quantizers,
 * and the importance-weighted ones with an imatrix) from libggml-base.so, and gguf-py's
 * dequantization of them, recorded by test/fixtures/scripts/make_ggml_quants.py.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  dequantizeGgml,
  ggmlBitsPerWeight,
  ggmlTypeInfo,
  placeGgml,
  quantizeGgml,
  type GgmlStoredType,
} from '../../../src/engine/quantizers/ggml/ggmlQuant';
import { FIXTURE_DIR } from './fixtures';
import {
  bitsPerElement,
  fakeQuantize,
  formatLabel,
  formatToString,
  parseFormat,
  storageOf,
  takesBlockSize,
  withTile,
} from '../../../src/engine/quantizers';
import { floatToHalf, halfToFloat } from '../../../src/engine/readers/dtypes';
import { mulberry32 } from '../../../src/engine/random';

interface Header {
  counts: Record<string, { blocks: number; bytes: number; values: number }>;
  cases: {
    name: string;
    rows: number;
    cols: number;
    input: [number, number];
    results: {
      type: GgmlStoredType;
      importance: [number, number] | null;
      bytes: [number, number];
      dequantized_sha256: string;
    }[];
  }[];
}

function load(path: string): { header: Header; blob: (r: [number, number]) => Uint8Array } {
  const bytes = gunzipSync(readFileSync(path));
  assert.equal(bytes.subarray(0, 4).toString('latin1'), 'GGQF');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(8, true);
  const header = JSON.parse(bytes.subarray(12, 12 + n).toString('utf8')) as Header;
  const base = 12 + n;
  // Copied so that float32 views are aligned.
  return { header, blob: ([at, len]) => new Uint8Array(bytes.subarray(base + at, base + at + len)) };
}

const floats = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);

function checkFixture(path: string): void {
  const { header, blob } = load(path);
  const seen: Record<string, { blocks: number; values: number; mismatched: number; cases: number }> = {};
  const failures: string[] = [];
  for (const c of header.cases) {
    const x = floats(blob(c.input));
    for (const r of c.results) {
      const importance = r.importance ? floats(blob(r.importance)) : null;
      const expected = blob(r.bytes);
      const got = quantizeGgml(x, c.rows, c.cols, r.type, importance);
      const bpb = ggmlTypeInfo(r.type).block.blockBytes;
      const blocks = got.length / bpb;
      let bad = 0;
      for (let b = 0; b < blocks; b++) {
        for (let i = b * bpb; i < (b + 1) * bpb; i++) {
          if (got[i] !== expected[i]) {
            bad++;
            break;
          }
        }
      }
      const s = (seen[`${r.type}${importance ? ' imatrix' : ''}`] ??= {
        blocks: 0,
        values: 0,
        mismatched: 0,
        cases: 0,
      });
      s.blocks += blocks;
      s.values += x.length;
      s.mismatched += bad;
      s.cases++;
      if (bad || got.length !== expected.length) {
        failures.push(`${c.name} ${r.type}${importance ? ' (imatrix)' : ''}: ${bad} of ${blocks} blocks differ`);
        continue;
      }
      const wq = dequantizeGgml(got, r.type, x.length);
      const hash = createHash('sha256').update(new Uint8Array(wq.buffer)).digest('hex');
      if (hash !== r.dequantized_sha256) failures.push(`${c.name} ${r.type}: dequantized values differ from gguf-py`);
    }
  }
  if (process.env.QUANT_LENS_GGML_VERBOSE) console.log(JSON.stringify(seen, null, 1));
  assert.deepEqual(failures, []);
  for (const t of ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'iq4_nl']) {
    assert.ok((seen[t]?.blocks ?? 0) > 0, `fixture has no ${t} cases`);
  }
}

test('ggml types: bytes equal ggml quantize_<type> and W_q equals gguf-py, with and without imatrix', () => {
  checkFixture(join(FIXTURE_DIR, 'ggml-quants.bin.gz'));
});

test('ggml types: stress fixture (QUANT_LENS_GGML_STRESS)', { skip: !process.env.QUANT_LENS_GGML_STRESS }, () => {
  checkFixture(process.env.QUANT_LENS_GGML_STRESS!);
});

test('exact bits per weight of the llama.cpp types', () => {
  const expected: Record<string, number> = {
    q4_0: 4.5,
    q4_1: 5,
    q5_0: 5.5,
    q5_1: 6,
    q8_0: 8.5,
    q2_k: 2.625,
    q3_k: 3.4375,
    q4_k: 4.5,
    q5_k: 5.5,
    q6_k: 6.5625,
    iq4_nl: 4.5,
    f16: 16,
  };
  for (const [t, bits] of Object.entries(expected)) assert.equal(ggmlBitsPerWeight(t as GgmlStoredType), bits, t);
});

test('rows that do not split into blocks fall back as llama-quantize does', () => {
  assert.deepEqual(placeGgml('q4_k', 512), { requested: 'q4_k', stored: 'q4_k', fallback: null });
  assert.equal(placeGgml('q2_k', 128).stored, 'iq4_nl');
  assert.equal(placeGgml('q3_k', 4896).stored, 'iq4_nl');
  assert.equal(placeGgml('q4_k', 128).stored, 'q5_0');
  assert.equal(placeGgml('q5_k', 128).stored, 'q5_1');
  assert.equal(placeGgml('q6_k', 128).stored, 'q8_0');
  assert.equal(placeGgml('q6_k', 100).stored, 'f16');
  assert.equal(placeGgml('q4_0', 100).stored, 'f16');
  assert.match(placeGgml('q4_k', 128).fallback ?? '', /Q5_0.*llama-quantize/);
  assert.match(placeGgml('q4_0', 100).fallback ?? '', /Unsupported tensor size/);
});

test('llama.cpp types parse, print and label as formats; blocks are fixed', () => {
  const f = parseFormat('Q4_K');
  assert.deepEqual(f, { kind: 'ggml', type: 'q4_k', imatrix: false, tile: [1, 256] });
  assert.equal(formatToString(parseFormat('q3_k:imatrix')), 'q3_k:imatrix');
  assert.equal(formatLabel(parseFormat('q6_k:imatrix')), 'Q6_K (llama.cpp, imatrix)');
  assert.equal(takesBlockSize(f), false);
  assert.deepEqual(withTile(f, [1, 256]), f);
  assert.throws(() => parseFormat('q4_k:block=32'), /blocks are fixed/);
  assert.throws(() => withTile(f, [1, 32]), /fixed block/);
});

test('bits per weight follow the type each row is stored in', () => {
  assert.equal(bitsPerElement(parseFormat('q4_k'), 64, 512), 4.5);
  assert.equal(bitsPerElement(parseFormat('q6_k'), 64, 512), 6.5625);
  assert.equal(bitsPerElement(parseFormat('q4_0'), 64, 512), 4.5);
  // 128-wide rows: Q4_K falls back to Q5_0, Q3_K to IQ4_NL, Q6_K to Q8_0; 100-wide to F16.
  assert.equal(bitsPerElement(parseFormat('q4_k'), 64, 128), 5.5);
  assert.equal(bitsPerElement(parseFormat('q3_k'), 64, 128), 4.5);
  assert.equal(bitsPerElement(parseFormat('q6_k'), 64, 128), 8.5);
  assert.equal(bitsPerElement(parseFormat('q4_k'), 64, 100), 16);
  const s = storageOf(parseFormat('q4_k'), 2, 256);
  assert.equal(s.elementBits, 4 * 512);
  assert.equal(s.totalBits, 2 * 144 * 8);
});

test('fakeQuantize of a llama.cpp format is the decoded bytes of the stored type, fall-back included', () => {
  const rng = mulberry32(7);
  const rows = 3;
  const cols = 160; // not a multiple of 256: Q4_K falls back to Q5_0
  const x = Float32Array.from({ length: rows * cols }, () => (rng() - 0.5) * 0.1);
  const wq = fakeQuantize(x, rows, cols, parseFormat('q4_k'));
  const direct = dequantizeGgml(quantizeGgml(x, rows, cols, 'q5_0', null), 'q5_0', rows * cols);
  assert.deepEqual(wq, direct);
  assert.notDeepEqual(wq, x);
  const odd = Float32Array.from({ length: 2 * 50 }, () => rng() - 0.5);
  const half = fakeQuantize(odd, 2, 50, parseFormat('q8_0'));
  assert.deepEqual(
    half,
    Float32Array.from(odd, (v) => halfToFloat(floatToHalf(v))),
  );
});

test(':imatrix formats need the importance and use it', () => {
  const rng = mulberry32(11);
  const rows = 4;
  const cols = 256;
  const x = Float32Array.from({ length: rows * cols }, () => (rng() - 0.5) * 0.1);
  assert.throws(() => fakeQuantize(x, rows, cols, parseFormat('q4_k:imatrix')), /act_rms/);
  const importance = Float32Array.from({ length: cols }, (_, i) => (i % 7 === 0 ? 25 : 0.01));
  const weighted = fakeQuantize(x, rows, cols, parseFormat('q4_k:imatrix'), { importance });
  const plain = fakeQuantize(x, rows, cols, parseFormat('q4_k'), { importance });
  assert.deepEqual(weighted, dequantizeGgml(quantizeGgml(x, rows, cols, 'q4_k', importance), 'q4_k', x.length));
  assert.notDeepEqual(weighted, plain);
  // The important columns come out closer to W.
  const err = (w: Float32Array, sel: (i: number) => boolean) => {
    let e = 0;
    for (let i = 0; i < x.length; i++) if (sel(i % cols)) e += (w[i]! - x[i]!) ** 2;
    return e;
  };
  assert.ok(err(weighted, (c) => c % 7 === 0) < err(plain, (c) => c % 7 === 0));
});
