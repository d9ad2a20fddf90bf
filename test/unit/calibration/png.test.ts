/**
 * PNG decoding against an independent decoder: every colour type (gray, gray+alpha, RGB, RGBA,
 * palette with and without tRNS) at every bit depth it allows (1, 2, 4, 8, 16), Adam7 interlaced
 * and every row filter. The pixels of test/fixtures/png/ are known samples that Pillow reads back
 * exactly (test/fixtures/scripts/make_png_fixtures.py); readPng must read the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readPng } from '../../../src/engine/calibration/imageInputs';

const DIR = join(import.meta.dirname, '../../fixtures/png');
const reference = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as Record<
  string,
  { width: number; height: number; rgb: number[][][] }
>;

test('the fixtures cover every colour type and bit depth', () => {
  const names = readdirSync(DIR).filter((f) => f.endsWith('.png'));
  assert.deepEqual(names.sort(), Object.keys(reference).sort());
  for (const kind of [
    'gray1',
    'gray2',
    'gray4',
    'gray8',
    'gray16',
    'gray-alpha8',
    'gray-alpha16',
    'rgb8',
    'rgb16',
    'rgba8',
    'rgba16',
    'palette1',
    'palette2',
    'palette4',
    'palette8',
    'adam7',
    'trns',
  ])
    assert.ok(
      names.some((n) => n.includes(kind)),
      kind,
    );
});

for (const [name, ref] of Object.entries(reference)) {
  test(`${name} decodes as Pillow reads it`, () => {
    const img = readPng(join(DIR, name), 3);
    assert.equal(img.width, ref.width);
    assert.equal(img.height, ref.height);
    const plane = img.width * img.height;
    let worst = 0;
    let where = '';
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        for (let c = 0; c < 3; c++) {
          const d = Math.abs(img.data[c * plane + y * img.width + x]! - ref.rgb[y]![x]![c]!);
          if (d > worst) [worst, where] = [d, `(${x}, ${y}) channel ${c}`];
        }
      }
    }
    // float32 of v·255/(2^d − 1): within a few ulps of 255.
    assert.ok(worst < 1e-4, `${name}: ${worst} off at ${where}`);
    // A one-channel model sees the mean of R, G and B.
    const gray = readPng(join(DIR, name), 1);
    const p = 3 * img.width + 5;
    const [r, g, b] = ref.rgb[3]![5]!;
    assert.ok(Math.abs(gray.data[p]! - (r! + g! + b!) / 3) < 1e-4);
  });
}
