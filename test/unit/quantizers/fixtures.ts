/**
 * Reader for the reference fixtures written by test/fixtures/scripts/quantizer_reference.py
 * (gzip of: "QLFX", uint32 version, uint32 header length, JSON header, padding to 4, float32 data).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export const FIXTURE_DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'quantizers');

export interface FixtureCase {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  readonly tile: readonly [number, number];
  readonly format: string;
  readonly input: Float32Array;
  readonly output: Float32Array;
}

export interface Fixture {
  readonly description: string;
  readonly reference: Record<string, string>;
  readonly cases: FixtureCase[];
}

interface Header {
  description: string;
  reference: Record<string, string>;
  arrays: Record<string, [number, number]>;
  cases: {
    name: string;
    rows: number;
    cols: number;
    tile: [number, number];
    format: string;
    input: string;
    output: string;
  }[];
}

export function loadFixture(path: string): Fixture {
  const bytes = gunzipSync(readFileSync(path));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.subarray(0, 4).toString('latin1') !== 'QLFX' || view.getUint32(4, true) !== 1) {
    throw new Error(`${path}: not a version-1 QLFX fixture`);
  }
  const headerLength = view.getUint32(8, true);
  const header = JSON.parse(bytes.subarray(12, 12 + headerLength).toString('utf8')) as Header;
  const dataStart = 12 + headerLength + ((4 - ((12 + headerLength) % 4)) % 4);
  // Copy so the Float32Array is aligned whatever Buffer's pool offset is.
  const data = new Float32Array(new Uint8Array(bytes.subarray(dataStart)).buffer);
  const array = (name: string): Float32Array => {
    const entry = header.arrays[name];
    if (!entry) throw new Error(`${path}: no array ${name}`);
    return data.subarray(entry[0], entry[0] + entry[1]);
  };
  return {
    description: header.description,
    reference: header.reference,
    cases: header.cases.map((c) => ({ ...c, input: array(c.input), output: array(c.output) })),
  };
}

/** Index of the first element whose bits differ (both NaN counts as equal), or -1. */
export function firstBitMismatch(actual: Float32Array, expected: Float32Array): number {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i] && !(Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) return i;
  }
  return actual.length === expected.length ? -1 : Math.min(actual.length, expected.length);
}

/** Counts elements whose bits differ (both NaN counts as equal). */
export function countBitMismatches(actual: Float32Array, expected: Float32Array): number {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i] && !(Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) n++;
  }
  return n;
}
