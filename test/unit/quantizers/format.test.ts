import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLabel, formatToString, parseFormat, withTile, type NumberFormat } from '../../../src/engine/quantizers';
import { isQuantLensError } from '../../../src/engine/errors';

test('parses the documented format strings', () => {
  const cases: [string, NumberFormat][] = [
    ['mxint4', { kind: 'mxint', bits: 4, exponentBits: 8, tile: [1, 16], flavour: 'lqer' }],
    ['mxint3:block=32', { kind: 'mxint', bits: 3, exponentBits: 8, tile: [1, 32], flavour: 'lqer' }],
    ['mxint8:block=16x1', { kind: 'mxint', bits: 8, exponentBits: 8, tile: [16, 1], flavour: 'lqer' }],
    ['MXINT4:exp=4', { kind: 'mxint', bits: 4, exponentBits: 4, tile: [1, 16], flavour: 'lqer' }],
    ['mxint4:qera', { kind: 'mxint', bits: 4, exponentBits: 8, tile: [1, 32], flavour: 'qera' }],
    ['int4:g128', { kind: 'int', bits: 4, tile: [1, 128], symmetric: false }],
    ['int4:g128:sym', { kind: 'int', bits: 4, tile: [1, 128], symmetric: true }],
    ['int4', { kind: 'int', bits: 4, tile: [1, 128], symmetric: false }],
    ['int8:channel:sym', { kind: 'int', bits: 8, tile: [1, -1], symmetric: true }],
    ['int3:g=64', { kind: 'int', bits: 3, tile: [1, 64], symmetric: false }],
    ['mxfp4', { kind: 'mxfp', element: 'e2m1', tile: [1, 32] }],
    ['mxfp8', { kind: 'mxfp', element: 'e4m3', tile: [1, 32] }],
    ['mxfp8:e5m2', { kind: 'mxfp', element: 'e5m2', tile: [1, 32] }],
    ['mxfp6:e3m2', { kind: 'mxfp', element: 'e3m2', tile: [1, 32] }],
    ['nvfp4', { kind: 'nvfp4', tile: [1, 16] }],
    ['fp8', { kind: 'fp8', tile: [1, -1] }],
    ['fp8-e4m3-channel', { kind: 'fp8', tile: [1, -1] }],
    ['fp16', { kind: 'float', bits: 16 }],
    [' none ', { kind: 'float', bits: 16 }],
    ['fp32', { kind: 'float', bits: 32 }],
  ];
  for (const [text, expected] of cases) assert.deepEqual(parseFormat(text), expected, text);
});

test('formatToString round-trips through parseFormat', () => {
  for (const text of [
    'mxint4',
    'mxint2:block=32',
    'mxint8:block=16x1',
    'mxint6:block=4x8:exp=5',
    'mxint4:qera',
    'mxint3:block=16:qera',
    'int4:g128',
    'int4:g32:sym',
    'int8:channel',
    'int4:block=16x1',
    'mxfp4',
    'mxfp6',
    'mxfp6:e3m2',
    'mxfp8:e5m2:block=16',
    'nvfp4',
    'nvfp4:block=16x1',
    'fp8',
    'fp8:block=128',
    'fp16',
    'fp32',
  ]) {
    const format = parseFormat(text);
    assert.equal(formatToString(format), text);
    assert.deepEqual(parseFormat(formatToString(format)), format);
  }
});

test('labels are short and human', () => {
  assert.equal(formatLabel(parseFormat('mxint4')), 'MXINT4 (block 16)');
  assert.equal(formatLabel(parseFormat('mxint8:block=16x1')), 'MXINT8 (block 16×1)');
  assert.equal(formatLabel(parseFormat('mxint4:qera')), 'MXINT4 (block 32, QERA rounding)');
  assert.equal(formatLabel(parseFormat('int4:g128')), 'INT4 g128 asym');
  assert.equal(formatLabel(parseFormat('int4:g128:sym')), 'INT4 g128 sym');
  assert.equal(formatLabel(parseFormat('mxfp4')), 'MXFP4 (E2M1)');
  assert.equal(formatLabel(parseFormat('mxfp8:e5m2')), 'MXFP8 (E5M2)');
  assert.equal(formatLabel(parseFormat('nvfp4')), 'NVFP4');
  assert.equal(formatLabel(parseFormat('fp8')), 'FP8 E4M3 per channel');
  assert.equal(formatLabel(parseFormat('fp16')), 'FP16 (unquantized)');
});

test('rejects unknown strings with a bad-argument error listing the valid forms', () => {
  for (const text of [
    '',
    'mxint',
    'mxint1',
    'mxint9',
    'int16',
    'int4:g0',
    'int4:g',
    'mxint4:block=0',
    'mxint4:block=1x2x3',
    'mxint4:exp=9',
    'mxint4:exp=4:qera',
    'mxint4:sym',
    'mxfp5',
    'mxfp4:e4m3',
    'nvfp4:sym',
    'fp16:g128',
    'q4_k:block=32',
    'q7_k',
    'mxint4::block=16',
  ]) {
    assert.throws(
      () => parseFormat(text),
      (e: unknown) => isQuantLensError(e) && e.code === 'bad-argument' && e.message.includes('mxint<2-8>'),
      text,
    );
  }
});

test('withTile re-orients a format and checks the sizes', () => {
  const rows = withTile(parseFormat('mxint8'), [16, 1]);
  assert.deepEqual(rows, { kind: 'mxint', bits: 8, exponentBits: 8, tile: [16, 1], flavour: 'lqer' });
  assert.deepEqual(withTile(parseFormat('fp16'), [16, 1]), { kind: 'float', bits: 16 });
  assert.throws(
    () => withTile(parseFormat('int4'), [0, 16]),
    (e: unknown) => isQuantLensError(e) && e.code === 'bad-argument',
  );
});
