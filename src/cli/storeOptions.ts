/** `--store` and `--shard`, shared by `inspect` and `allocate` (docs/result-store.md). */
import { resolve } from 'node:path';
import { realpathSync, statSync } from 'node:fs';
import { QuantLensError } from '../engine/errors';
import { ResultStore } from '../engine/store/resultStore';
import { parseShard, type Shard } from '../engine/store/shard';

export const storeOptionSpec = {
  store: { type: 'string' },
  shard: { type: 'string' },
} as const;

export const storeOptionsHelp = `  --store <dir>           result store: layers analysed before at the same settings are read from it,
                          new ones written into it (created when missing; safe to share between runs)
  --shard <i/N|auto>      analyse only shard i of N (a deterministic split balanced by estimated cost)
                          into --store; auto: from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, or
                          auto/N from JOB_COMPLETION_INDEX (Kubernetes indexed jobs)`;

export interface StoreSelection {
  dir: string;
  store: ResultStore;
}

/**
 * Opens the store before any work so that a bad folder fails at once (exit 2); `inputs` are the
 * files the command reads, which the store may not be.
 */
export async function resolveStore(
  dir: string | undefined,
  inputs: (string | undefined)[],
  warn: (m: string) => void,
): Promise<StoreSelection | null> {
  if (dir === undefined) return null;
  if (dir.trim() === '') throw new QuantLensError('bad-argument', '--store needs a folder');
  const abs = resolve(dir);
  // Through links too: a store named by a link to the checkpoint is still the checkpoint.
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  for (const input of inputs) {
    if (input !== undefined && real(input) === real(abs)) {
      throw new QuantLensError('bad-argument', '--store names an input of this command; give a separate folder', dir);
    }
  }
  let isFile = false;
  try {
    isFile = !statSync(abs).isDirectory();
  } catch {
    // missing: created below
  }
  if (isFile) throw new QuantLensError('bad-argument', '--store must be a folder, this is a file', dir);
  return { dir: abs, store: await ResultStore.open(abs, { warn }) };
}

export function resolveShard(spec: string | undefined, store: StoreSelection | null): Shard | null {
  if (spec === undefined) return null;
  const shard = parseShard(spec);
  if (!store) {
    throw new QuantLensError(
      'bad-argument',
      '--shard writes its layers into a shared result store: give --store <dir> (the same for every shard)',
    );
  }
  return shard;
}

export function cliWarn(message: string): void {
  process.stderr.write(`quant-lens: warning: ${message}\n`);
}
