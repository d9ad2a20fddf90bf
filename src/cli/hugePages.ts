/**
 * Runs the CLI with glibc's malloc asking the kernel for transparent huge pages.
 *
 * Most Linux distributions grant huge pages only to memory that asks for them ("madvise" in
 * /sys/kernel/mm/transparent_hugepage/enabled), and glibc asks only when `glibc.malloc.hugetlb=1`
 * is in GLIBC_TUNABLES when the process starts. Without it every large Float32Array, and every
 * onnxruntime output, is faulted in 4 KiB at a time, and on the machines measured here those faults
 * cost as much as the arithmetic: first numbers of a 4096×4096 layer 1.16–1.19 s → 0.77–0.78 s,
 * of 14336×4096 2.58–2.64 s → 1.91–2.02 s (numpy madvises its own large arrays the same way).
 * The tunable cannot be set from inside a running process, so the CLI starts itself once more with
 * it (about 0.1 s) and passes on its arguments, standard streams, signals and exit status.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TUNABLE = 'glibc.malloc.hugetlb';
const THP_SETTING = '/sys/kernel/mm/transparent_hugepage/enabled';
/** Set to 0 to keep the CLI in one process (and to mark the relaunched one). */
export const HUGE_PAGES_ENV = 'QUANT_LENS_HUGE_PAGES';

export interface HugePageSystem {
  platform: NodeJS.Platform;
  env: NodeJS.ProcessEnv;
  /** The kernel's THP setting, e.g. "always [madvise] never"; null where it cannot be read. */
  thpSetting: string | null;
  /** glibc's version at run time; undefined on musl, macOS, Windows. */
  glibcVersion: string | undefined;
}

/** The GLIBC_TUNABLES to relaunch with, or null where a relaunch would gain nothing. */
export function hugePageTunables(sys: HugePageSystem): string | null {
  if (sys.platform !== 'linux' || !sys.glibcVersion || sys.env[HUGE_PAGES_ENV] === '0') return null;
  // "[always]" already backs large allocations with huge pages, "[never]" never does.
  if (!sys.thpSetting?.includes('[madvise]')) return null;
  const [major, minor] = sys.glibcVersion.split('.').map(Number);
  // The tunable arrived in glibc 2.35; older ones ignore it.
  if (!(major! > 2 || (major === 2 && minor! >= 35))) return null;
  const current = sys.env.GLIBC_TUNABLES ?? '';
  if (current.split(':').some((t) => t.startsWith(`${TUNABLE}=`))) return null;
  return current ? `${current}:${TUNABLE}=1` : `${TUNABLE}=1`;
}

export function currentSystem(): HugePageSystem {
  let thpSetting: string | null = null;
  try {
    thpSetting = readFileSync(THP_SETTING, 'utf8');
  } catch {
    // No such file: a kernel without THP, or a container that hides /sys.
  }
  const header =
    process.platform === 'linux'
      ? (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } }).header
      : undefined;
  return { platform: process.platform, env: process.env, thpSetting, glibcVersion: header?.glibcVersionRuntime };
}

const FORWARDED: NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGTERM'];
const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15, SIGKILL: 9 };

/**
 * Starts this script again with huge pages asked for and resolves with the exit status to pass on,
 * or with null where this process should do the work itself (no gain to be had, or no second
 * process to be started).
 */
export function relaunchWithHugePages(
  script: string,
  argv: string[],
  sys: HugePageSystem = currentSystem(),
): Promise<number | null> {
  const tunables = hugePageTunables(sys);
  if (!tunables) return Promise.resolve(null);
  const child = spawn(process.execPath, [...process.execArgv, script, ...argv], {
    stdio: 'inherit',
    env: { ...sys.env, GLIBC_TUNABLES: tunables, [HUGE_PAGES_ENV]: '0' },
  });
  // A signal meant for the CLI (a job scheduler's SIGTERM to this pid) reaches the process doing
  // the work, which removes its temporary files and exits with 128 + n; a terminal's SIGINT goes
  // to both, and a second one changes nothing.
  const forward = (s: NodeJS.Signals) => () => child.kill(s);
  const handlers = FORWARDED.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve) => {
    // Spawning failed (no memory for a second process, say): the work is done here instead.
    child.on('error', () => {
      for (const [s, h] of handlers) process.off(s, h);
      resolve(null);
    });
    child.on('exit', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      resolve(code ?? 128 + (signal ? (SIGNAL_NUMBERS[signal] ?? 0) : 0));
    });
  });
}
