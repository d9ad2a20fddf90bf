/**
 * The CLI asks glibc for transparent huge pages by starting itself again with
 * GLIBC_TUNABLES=glibc.malloc.hugetlb=1 where that gains something (Linux, glibc ≥ 2.35, THP on
 * request), keeps what the user set, and passes on output, exit status and arguments unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hugePageTunables, relaunchWithHugePages, type HugePageSystem } from '../../../src/cli/hugePages';
import { cliScript } from '../../helpers/workerBundle';

const madvise: HugePageSystem = {
  platform: 'linux',
  env: {},
  thpSetting: 'always [madvise] never\n',
  glibcVersion: '2.36',
};

test('huge pages are asked for only where glibc and the kernel would act on it', () => {
  assert.equal(hugePageTunables(madvise), 'glibc.malloc.hugetlb=1');
  assert.equal(
    hugePageTunables({ ...madvise, env: { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' } }),
    'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1',
  );
  // What the user chose stands, including "off".
  assert.equal(hugePageTunables({ ...madvise, env: { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' } }), null);
  assert.equal(hugePageTunables({ ...madvise, env: { QUANT_LENS_HUGE_PAGES: '0' } }), null);
  assert.equal(hugePageTunables({ ...madvise, thpSetting: '[always] madvise never' }), null);
  assert.equal(hugePageTunables({ ...madvise, thpSetting: 'always madvise [never]' }), null);
  assert.equal(hugePageTunables({ ...madvise, thpSetting: null }), null);
  assert.equal(hugePageTunables({ ...madvise, glibcVersion: '2.34' }), null);
  assert.equal(hugePageTunables({ ...madvise, glibcVersion: '3.0' }), 'glibc.malloc.hugetlb=1');
  assert.equal(hugePageTunables({ ...madvise, glibcVersion: undefined }), null);
  assert.equal(hugePageTunables({ ...madvise, platform: 'darwin' }), null);
});

test('the relaunched process gets the tunable, the arguments, and its exit status comes back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ql-hugepages-'));
  const script = join(dir, 'child.js');
  const report = join(dir, 'report.json');
  writeFileSync(
    script,
    `require('fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify({ t: process.env.GLIBC_TUNABLES, q: process.env.QUANT_LENS_HUGE_PAGES, argv: process.argv.slice(2) }));
process.exitCode = 7;`,
  );
  const code = await relaunchWithHugePages(script, ['inspect', 'a b', '--json'], {
    ...madvise,
    env: { PATH: process.env.PATH },
  });
  assert.equal(code, 7);
  const seen = JSON.parse(readFileSync(report, 'utf8')) as { t: string; q: string; argv: string[] };
  assert.deepEqual(seen, { t: 'glibc.malloc.hugetlb=1', q: '0', argv: ['inspect', 'a b', '--json'] });
  assert.equal(await relaunchWithHugePages(script, [], { ...madvise, platform: 'win32' }), null);
});

test('the CLI answers the same with and without the second process', () => {
  const run = (env: NodeJS.ProcessEnv, args: string[]) =>
    spawnSync(process.execPath, [cliScript(), ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  for (const args of [['--help'], ['inspect', join(tmpdir(), 'no-such-checkpoint.safetensors')], ['frobnicate']]) {
    const one = run({ QUANT_LENS_HUGE_PAGES: '0' }, args);
    const two = run({ QUANT_LENS_HUGE_PAGES: '' }, args);
    assert.equal(two.status, one.status, args.join(' '));
    assert.equal(two.stdout, one.stdout, args.join(' '));
    assert.equal(two.stderr, one.stderr, args.join(' '));
  }
});
