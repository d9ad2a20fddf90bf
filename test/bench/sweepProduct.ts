/**
 * How the sweep benchmarks (run.ts, sweep.ts) run Quant Lens: `quant-lens inspect` over a
 * TinyLlama-shaped checkpoint at L²QER rank 32, through a wrapper that calls the CLI's main() in
 * its own process and prints the peak RSS, with the environment the CLI gives itself.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentSystem, hugePageTunables } from '../../src/cli/hugePages';

const root = join(import.meta.dirname, '../..');

/** The malloc tunable the CLI relaunches itself with on this machine, or null. */
export const cliTunables = hugePageTunables(currentSystem());

/**
 * The environment the CLI gives itself (src/cli/hugePages.ts), for the engine run through another
 * entry point (a wrapper that calls main(), the bench's layer child).
 */
export function productEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...(cliTunables ? { GLIBC_TUNABLES: cliTunables, QUANT_LENS_HUGE_PAGES: '0' } : {}),
  };
}

/**
 * Writes the wrapper into `dir` (a file, not `node -e`: node takes a leading `inspect` as its debugger).
 * Besides the peak RSS it prints LOOP_MS, the span of the layer loop: from the first layer's start
 * (its JSON line's time less its timeMs) to the last line. The loop keeps two layers in flight,
 * so the per-layer times overlap and their sum is not the loop's time; the lines come out in the
 * layers' order, so the first is the layer that started first.
 */
export function peakRssWrapper(dir: string): string {
  const file = join(dir, 'peak-rss-wrapper.cjs');
  writeFileSync(
    file,
    `const { main } = require(${JSON.stringify(join(root, 'dist/cli.js'))});
let start, last;
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => {
  const text = String(chunk);
  if (text.startsWith('{')) {
    last = performance.now();
    if (start === undefined) start = last - JSON.parse(text.split('\\n')[0]).timeMs;
  }
  return write(chunk, ...rest);
};
main(process.argv.slice(2)).then((code) => {
  if (start !== undefined) write('LOOP_MS=' + (last - start) + '\\n');
  write('PEAK_RSS_KB=' + process.resourceUsage().maxRSS + '\\n');
  process.exitCode = code;
});`,
  );
  return file;
}

/** The wrapper's arguments for the sweep over `layers`. */
export function sweepArgs(wrapper: string, ckpt: string, stats: string, layers: string[]): string[] {
  return [
    wrapper,
    'inspect',
    ckpt,
    '--calib',
    stats,
    '--method',
    'l2qer',
    '--format',
    'mxint4',
    '--rank',
    '32',
    '--json',
    ...layers.flatMap((l) => ['--layer', l]),
  ];
}
