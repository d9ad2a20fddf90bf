/** Argument parsing shared by the CLI commands (node:util parseArgs with our error type). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { QuantLensError } from '../engine/errors';
import { joinNegativeValues } from './numbers';

/**
 * Parses a command's arguments; `positionals` lists what the positional arguments are, and one
 * more than that is refused instead of silently ignored.
 */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  positionals?: readonly string[],
) {
  const stringOptions = new Set(Object.entries(options).flatMap(([k, o]) => (o.type === 'string' ? [k] : [])));
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(argv, stringOptions),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new QuantLensError('bad-argument', (e as Error).message);
  }
  if (positionals && parsed.positionals.length > positionals.length) {
    const extra = parsed.positionals.slice(positionals.length);
    throw new QuantLensError(
      'bad-argument',
      `unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((x) => `"${x}"`).join(' ')} (expected ${positionals.join(', ')}; options start with --)`,
    );
  }
  return parsed;
}

export function requirePositional(positionals: string[], index: number, what: string): string {
  const v = positionals[index];
  if (v === undefined) throw new QuantLensError('bad-argument', `missing ${what}`);
  return v;
}
