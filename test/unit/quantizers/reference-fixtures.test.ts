import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fakeQuantize, parseFormat, withTile } from '../../../src/engine/quantizers';
import { FIXTURE_DIR, countBitMismatches, firstBitMismatch, loadFixture, type Fixture } from './fixtures';

function checkFixture(fixture: Fixture): { cases: number; values: number } {
  let values = 0;
  for (const c of fixture.cases) {
    const format = withTile(parseFormat(c.format), c.tile);
    const actual = fakeQuantize(c.input, c.rows, c.cols, format);
    const at = firstBitMismatch(actual, c.output);
    if (at >= 0) {
      const mismatches = countBitMismatches(actual, c.output);
      assert.fail(
        `${c.name} ${c.format} tile ${c.tile.join('x')}: ${mismatches} mismatches; first at ${at} ` +
          `(row ${Math.floor(at / c.cols)}): input ${c.input[at]}, expected ${c.output[at]}, got ${actual[at]}`,
      );
    }
    values += c.output.length;
  }
  return { cases: fixture.cases.length, values };
}

for (const [file, what] of [
  ['mxint-lqer.qlfx.gz', 'MXINT (lqer) matches the official LQER block_fp bit for bit'],
  ['mxint-qera.qlfx.gz', 'MXINT (qera) matches the official QERA mxint quantizer bit for bit'],
  ['int.qlfx.gz', 'INT-n asymmetric and symmetric match the float32 reference bit for bit'],
  ['minifloat.qlfx.gz', 'MXFP, NVFP4 and FP8 match the independent references bit for bit'],
] as const) {
  test(what, () => {
    const { cases, values } = checkFixture(loadFixture(join(FIXTURE_DIR, file)));
    assert.ok(cases > 0 && values > 0);
  });
}

// A large generated comparison (see quantizer_reference.py --stress); skipped unless present.
const stressPath = process.env.QUANT_LENS_QUANTIZER_STRESS;
test(
  'MXINT (lqer) matches the official code on the stress fixture',
  { skip: !stressPath || !existsSync(stressPath) },
  () => {
    const { cases, values } = checkFixture(loadFixture(stressPath ?? ''));
    console.log(`stress fixture: ${cases} cases, ${values} values, 0 mismatches`);
  },
);
