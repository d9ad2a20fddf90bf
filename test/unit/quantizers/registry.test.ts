import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FACTOR_FORMAT_CHOICES,
  FORMAT_FAMILIES,
  FORMAT_SYNTAX_HELP,
  WEIGHT_FORMAT_CHOICES,
  bitsPerElement,
  fakeQuantize,
  familyOf,
  formatToString,
  isQuantized,
  parseFormat,
  takesBlockSize,
  withTile,
} from '../../../src/engine/quantizers';
import { isQuantLensError } from '../../../src/engine/errors';

test('each family has its own kind, so a parsed format finds its way back to its entry', () => {
  const kinds = FORMAT_FAMILIES.map((f) => f.kind);
  assert.equal(new Set(kinds).size, kinds.length, kinds.join(', '));
});

test('every choice the settings offer parses, belongs to the family that lists it, and survives printing', () => {
  for (const family of FORMAT_FAMILIES) {
    for (const choice of [...family.weightChoices, ...family.factorChoices]) {
      const format = parseFormat(choice);
      assert.equal(format.kind, family.kind, choice);
      assert.equal(familyOf(format), family, choice);
      assert.deepEqual(parseFormat(formatToString(format)), format, choice);
    }
  }
  assert.ok(WEIGHT_FORMAT_CHOICES.includes('mxint4') && FACTOR_FORMAT_CHOICES.includes('mxint8'));
  assert.equal(new Set(WEIGHT_FORMAT_CHOICES).size, WEIGHT_FORMAT_CHOICES.length);
  assert.equal(new Set(FACTOR_FORMAT_CHOICES).size, FACTOR_FORMAT_CHOICES.length);
});

test("a family's default tile is the one its bare name parses to, and the help lists its syntax", () => {
  for (const family of FORMAT_FAMILIES) {
    assert.ok(FORMAT_SYNTAX_HELP.includes(family.syntax), family.kind);
    for (const choice of [...family.weightChoices, ...family.factorChoices]) {
      const format = parseFormat(choice);
      assert.deepEqual('tile' in format ? format.tile : undefined, familyOf(format).defaultTile(format), choice);
    }
  }
});

test('the weight choices quantize: fewer distinct values than the input, storage above zero', () => {
  const data = Float32Array.from({ length: 64 * 64 }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
  for (const choice of WEIGHT_FORMAT_CHOICES) {
    const format = parseFormat(choice);
    assert.ok(isQuantized(format), choice);
    const q = fakeQuantize(data, 64, 64, format);
    assert.ok(new Set(q).size < new Set(data).size, choice);
    assert.ok(bitsPerElement(format, 64, 64) > 0, choice);
  }
  const fp16 = parseFormat('fp16');
  assert.ok(!isQuantized(fp16) && !takesBlockSize(fp16));
  assert.deepEqual(fakeQuantize(data, 64, 64, fp16), data);
});

test('an unknown name is refused with every family listed', () => {
  assert.throws(
    () => parseFormat('int4:g128:banana'),
    (e: unknown) =>
      isQuantLensError(e) &&
      e.message.includes('"banana" is not an INT option') &&
      FORMAT_FAMILIES.every((f) => e.message.includes(f.syntax)),
  );
  assert.deepEqual(withTile(parseFormat('int4'), [1, 64]), parseFormat('int4:g64'));
});
