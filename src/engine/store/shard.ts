/**
 * Splitting a checkpoint's layers between the tasks of a job array (Slurm, Kubernetes indexed
 * jobs): every task computes the same assignment from the same layer list, so no coordination is
 * needed, and the shards together cover every layer exactly once.
 */
import { QuantLensError } from '../errors';

export interface Shard {
  /** 0 ≤ index < count. */
  index: number;
  count: number;
}

/** Far beyond any job array (Slurm's default MaxArraySize is 1001); catches typos like 1/1e9. */
export const MAX_SHARDS = 100_000;

type Env = Record<string, string | undefined>;

function intIn(v: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(v)) throw new QuantLensError('bad-argument', `${what} must be a whole number, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max)
    throw new QuantLensError('bad-argument', `${what} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/**
 * `i/N`, or `auto` (Slurm job arrays: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT), or `auto/N`
 * (Kubernetes indexed jobs, which give JOB_COMPLETION_INDEX but not the count; in a Slurm array N
 * must agree with SLURM_ARRAY_TASK_COUNT).
 */
export function parseShard(spec: string, env: Env = process.env): Shard {
  const auto = /^auto(?:\/(.+))?$/.exec(spec);
  if (!auto) {
    const m = /^([^/]+)\/([^/]+)$/.exec(spec);
    if (!m) throw new QuantLensError('bad-argument', `--shard must be i/N (e.g. 0/4), auto or auto/N; got "${spec}"`);
    const count = intIn(m[2]!, '--shard N', 1, MAX_SHARDS);
    const index = intIn(m[1]!, '--shard i', 0, count - 1);
    return { index, count };
  }
  const given = auto[1] !== undefined ? intIn(auto[1], '--shard auto/N', 1, MAX_SHARDS) : null;
  if (env.SLURM_ARRAY_TASK_ID !== undefined) {
    const s = slurmShard(env);
    if (given !== null && given !== s.count) {
      throw new QuantLensError(
        'bad-argument',
        `--shard auto/${given} disagrees with the Slurm array's ${s.count} tasks (SLURM_ARRAY_TASK_COUNT)`,
      );
    }
    return s;
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) {
    if (given === null) {
      throw new QuantLensError(
        'bad-argument',
        "--shard auto found JOB_COMPLETION_INDEX (a Kubernetes indexed job) but no count: pass --shard auto/N with N = the job's completions",
      );
    }
    return { index: intIn(env.JOB_COMPLETION_INDEX, 'JOB_COMPLETION_INDEX', 0, given - 1), count: given };
  }
  throw new QuantLensError(
    'bad-argument',
    '--shard auto needs SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (a Slurm job array) or JOB_COMPLETION_INDEX (a Kubernetes indexed job, with --shard auto/N); none is set',
  );
}

/**
 * Slurm numbers array tasks by the values of --array (0-3, 1-4, 0-30:10, …): the shard index is
 * the task's position among them, which needs an evenly spaced array.
 */
function slurmShard(env: Env): Shard {
  const need = (k: string) => {
    const v = env[k];
    if (v === undefined)
      throw new QuantLensError('bad-argument', `--shard auto: ${k} is not set although SLURM_ARRAY_TASK_ID is`);
    return v;
  };
  const count = intIn(need('SLURM_ARRAY_TASK_COUNT'), 'SLURM_ARRAY_TASK_COUNT', 1, MAX_SHARDS);
  const id = intIn(need('SLURM_ARRAY_TASK_ID'), 'SLURM_ARRAY_TASK_ID', 0, Number.MAX_SAFE_INTEGER);
  const min =
    env.SLURM_ARRAY_TASK_MIN !== undefined
      ? intIn(env.SLURM_ARRAY_TASK_MIN, 'SLURM_ARRAY_TASK_MIN', 0, Number.MAX_SAFE_INTEGER)
      : 0;
  const max =
    env.SLURM_ARRAY_TASK_MAX !== undefined
      ? intIn(env.SLURM_ARRAY_TASK_MAX, 'SLURM_ARRAY_TASK_MAX', 0, Number.MAX_SAFE_INTEGER)
      : min + count - 1;
  const step = count > 1 ? (max - min) / (count - 1) : 1;
  const index = (id - min) / step;
  if (!Number.isInteger(step) || step < 1 || !Number.isInteger(index) || index < 0 || index >= count) {
    throw new QuantLensError(
      'bad-argument',
      `--shard auto: the Slurm array (tasks ${min}…${max}, ${count} of them) is not evenly spaced; use --array=0-${count - 1}`,
    );
  }
  return { index, count };
}

export interface CostItem {
  name: string;
  /** [out, in] */
  shape: [number, number];
}

/**
 * Relative cost of analysing a layer: the spectra are a Gram product and an eigensolve on the
 * smaller side (m·n² and n³), the top-R factors and the error curves are about m·n·R, quantizing
 * is m·n.
 */
export function estimatedCost(
  shape: [number, number],
  o: { spectra: boolean; maxRank: number; variants?: number },
): number {
  const m = Math.max(shape[0], shape[1]);
  const n = Math.min(shape[0], shape[1]);
  const spectra = o.spectra ? m * n * n + 2 * n * n * n : 0;
  const factors = m * n * (Math.min(n, o.maxRank) + 8) * 4;
  return (spectra + factors + m * n * 20) * (o.variants ?? 1);
}

/**
 * Longest processing time first: layers by decreasing cost (ties by name), each to the shard with
 * the least work so far (ties to the lowest index). Within 4/3 of the best possible makespan.
 */
export function assignShards<T extends CostItem>(items: T[], count: number, cost: (item: T) => number): T[][] {
  const order = items
    .map((item) => ({ item, c: cost(item) }))
    .sort((a, b) => b.c - a.c || (a.item.name < b.item.name ? -1 : a.item.name > b.item.name ? 1 : 0));
  const shards: T[][] = Array.from({ length: count }, () => []);
  const load = new Array<number>(count).fill(0);
  for (const { item, c } of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (load[s]! < load[best]!) best = s;
    shards[best]!.push(item);
    load[best]! += c;
  }
  // Each shard in the checkpoint's order, as a single run would print it.
  const position = new Map(items.map((it, i) => [it, i]));
  for (const s of shards) s.sort((a, b) => position.get(a)! - position.get(b)!);
  return shards;
}

/** This task's layers. */
export function shardOf<T extends CostItem>(items: T[], shard: Shard, cost: (item: T) => number): T[] {
  return assignShards(items, shard.count, cost)[shard.index]!;
}
