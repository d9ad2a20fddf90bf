/** Argument parsing shared by the CLI commands (node:util parseArgs with our error type). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { QuantLensError } from '../engine/errors';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new QuantLensError('bad-argument', (e as Error).message);
  }
}

export function requirePositional(positionals: string[], index: number, what: string): string {
  const v = positionals[index];
  if (v === undefined) throw new QuantLensError('bad-argument', `missing ${what}`);
  return v;
}
