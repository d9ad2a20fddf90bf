/** Loads the numpy reference fixtures of test/fixtures/linalg (see linalg_reference.py). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Mat } from '../../../src/engine/linalg/kernels';

const DIR = join(__dirname, '..', '..', 'fixtures', 'linalg');

interface Entry {
  file: string;
  dtype: 'float32' | 'float64';
  rows: number;
  cols: number;
  bandwidth?: number;
  singularValues?: number[];
  eigenvalues?: number[];
}

let index: Record<string, Entry> | undefined;
function entry(name: string): Entry {
  index ??= JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as Record<string, Entry>;
  const e = index[name];
  if (!e) throw new Error(`no fixture ${name}`);
  return e;
}

function bytes(file: string): ArrayBuffer {
  const buf = readFileSync(join(DIR, file));
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}

export function matrixF32(name: string): Mat<Float32Array> {
  const e = entry(name);
  return { data: new Float32Array(bytes(e.file)), rows: e.rows, cols: e.cols };
}

export function matrixF64(name: string): Mat<Float64Array> {
  const e = entry(name);
  return { data: new Float64Array(bytes(e.file)), rows: e.rows, cols: e.cols };
}

/** Lower band by columns ([j, o] = A[j + o, j]) and its bandwidth. */
export function bandColumns(name: string): { data: Float64Array; n: number; bandwidth: number } {
  const e = entry(name);
  return { data: new Float64Array(bytes(e.file)), n: e.rows, bandwidth: e.bandwidth ?? 0 };
}

export function referenceSingularValues(name: string): Float64Array {
  return Float64Array.from(entry(name).singularValues ?? []);
}

export function referenceEigenvalues(name: string): Float64Array {
  return Float64Array.from(entry(name).eigenvalues ?? []);
}
