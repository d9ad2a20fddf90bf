import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bitsPerElement, parseFormat, storageOf, withTile } from '../../../src/engine/quantizers';

const bits = (text: string, rows = 4096, cols = 4096): number => bitsPerElement(parseFormat(text), rows, cols);

test('bits per element include scales, exponents and zero points', () => {
  assert.equal(bits('mxint4'), 4.5);
  assert.equal(bits('mxint8'), 8.5);
  assert.equal(bits('mxint6'), 6.5);
  assert.equal(bits('mxint4:block=32'), 4.25);
  assert.equal(bits('mxint3:block=32'), 3.25);
  assert.equal(bits('mxint4:exp=4'), 4.25); // the workbook's "4-bit exp" variant
  assert.equal(bits('mxint8:exp=4'), 8.25);
  assert.equal(bits('mxint4:qera'), 4.25);
  assert.equal(bits('int4:g128'), 4 + (16 + 4) / 128); // fp16 scale + 4-bit zero point
  assert.equal(bits('int4:g128'), 4.15625);
  assert.equal(bits('int4:g128:sym'), 4 + 16 / 128);
  assert.equal(bits('mxfp4'), 4.25);
  assert.equal(bits('mxfp6'), 6.25);
  assert.equal(bits('mxfp8'), 8.25);
  assert.equal(bits('nvfp4'), 4 + 8 / 16 + 32 / (4096 * 4096));
  assert.equal(bits('fp8'), 8 + 32 / 4096);
  assert.equal(bits('fp16'), 16);
  assert.equal(bits('fp32'), 32);
});

test('ragged tiles count as whole tiles', () => {
  // 1×20 in blocks of 16: two exponents for 20 elements.
  assert.equal(bits('mxint4', 1, 20), (20 * 4 + 2 * 8) / 20);
  // The other blocking of a factor A[in, k] with k = 20: [16, 1] tiles over 4096×20.
  const down = withTile(parseFormat('mxint8'), [16, 1]);
  assert.equal(bitsPerElement(down, 4096, 20), 8.5);
  assert.equal(bits('int4:g128', 2, 300), (600 * 4 + 2 * 3 * 20) / 600);
  const s = storageOf(parseFormat('nvfp4'), 3, 40);
  assert.deepEqual(s, {
    elements: 120,
    elementBits: 480,
    metadataBits: 9 * 8 + 32,
    totalBits: 584,
    bitsPerElement: 584 / 120,
  });
  assert.equal(bits('mxint4', 0, 16), 0);
});
