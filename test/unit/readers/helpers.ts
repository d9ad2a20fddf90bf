/** Shared by the reader tests: fixture paths and comparison with the producers' reference.json. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QuantLensError, type ErrorCode } from '../../../src/engine/errors';

export const FIXTURES = join(import.meta.dirname, '../../fixtures/readers');

export function fixture(...parts: string[]): string {
  return join(FIXTURES, ...parts);
}

export function tempDir(prefix = 'ql-readers-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface ValueReference {
  shape: number[];
  sha256: string;
  sum: number;
  head: (number | string)[];
  nan: number;
  inf: number;
}

export interface FixtureReference {
  tensors: Record<string, ValueReference>;
  layers: Record<string, ValueReference>;
  [extra: string]: unknown;
}

export function loadReference(path: string): FixtureReference {
  return JSON.parse(readFileSync(path, 'utf8')) as FixtureReference;
}

/** SHA-256 of the values as little-endian float32 with NaNs made canonical, as the Python side computes it. */
export function valuesHash(values: Float32Array): string {
  const copy = Float32Array.from(values, (v) => (Number.isNaN(v) ? NaN : v));
  const bits = new Uint32Array(copy.buffer);
  for (let i = 0; i < copy.length; i++) if (Number.isNaN(copy[i]!)) bits[i] = 0x7fc00000;
  return createHash('sha256').update(new Uint8Array(copy.buffer)).digest('hex');
}

/** Asserts decoded values equal the producer's, bit for bit; on mismatch says how far off they are. */
export function assertSameValues(actual: Float32Array, ref: ValueReference, label: string): void {
  const count = ref.shape.reduce((a, b) => a * b, 1);
  assert.equal(actual.length, count, `${label}: ${actual.length} values, expected ${count}`);
  if (valuesHash(actual) === ref.sha256) return;
  const head = [...actual.slice(0, ref.head.length)];
  let sum = 0;
  for (const v of actual) if (Number.isFinite(v)) sum += v;
  assert.fail(
    `${label}: values differ from the producer's: head ${JSON.stringify(head)} vs ${JSON.stringify(ref.head)}, sum ${sum} vs ${ref.sum}`,
  );
}

/** Asserts that `fn` rejects with our typed error (optionally of a given code and naming a file). */
export async function rejectsWith(
  fn: () => Promise<unknown>,
  code: ErrorCode | ErrorCode[],
  message?: RegExp,
  file?: string,
): Promise<QuantLensError> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(
    caught instanceof QuantLensError,
    `expected a QuantLensError, got ${caught instanceof Error ? caught.stack : String(caught)}`,
  );
  const codes = Array.isArray(code) ? code : [code];
  assert.ok(codes.includes(caught.code), `expected code ${codes.join('|')}, got ${caught.code}: ${caught.message}`);
  if (message) assert.match(caught.message, message);
  if (file !== undefined) assert.equal(caught.file, file);
  return caught;
}
