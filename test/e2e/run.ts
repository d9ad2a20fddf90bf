/**
 * End-to-end suite runner: `npm run test:e2e [-- filter…]`.
 *
 * Packages the extension as a VSIX, installs it into a throwaway code-server with
 * `--install-extension`, writes a workspace of fixture checkpoints, starts code-server, and runs
 * the scenario files (test/e2e/scenarios/*.e2e.ts) with node:test; each drives Debian's Chromium
 * through playwright-core. Screenshots land in test/e2e/screenshots/ (git-ignored). code-server
 * and the test process run in their own process groups, stopped whole at the end, on failure and
 * on Ctrl+C.
 *
 * Environment: QUANT_LENS_SKIP_E2E=1 skips (quick local runs only; CI never sets it),
 * QUANT_LENS_E2E_VSIX=<file> tests that VSIX instead of packaging one, QUANT_LENS_E2E_KEEP=1
 * keeps the state folder (user data, logs) for a look afterwards. See lib/environment.ts for
 * tool locations.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { CodeServer } from './lib/codeServer';
import { toEnvVars } from './lib/env';
import { findTools, repoRoot, screenshotsRoot, SKIP_VAR, type Tools } from './lib/environment';
import { writeWorkspace } from './lib/fixtures';
import { withoutTelemetrySwitches } from '../helpers/telemetrySwitches';
import { exited, spawnGroup, stopGroup } from './lib/processGroup';

const scenariosDir = join(repoRoot, 'test/e2e/scenarios');
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
const say = (msg: string) => console.log(`e2e: ${msg} [${elapsed()}]`);

function scenarioFiles(filters: string[]): string[] {
  return readdirSync(scenariosDir)
    .filter((f) => f.endsWith('.e2e.ts'))
    .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
    .sort()
    .map((f) => join(scenariosDir, f));
}

function packageVsix(out: string): string {
  const given = process.env.QUANT_LENS_E2E_VSIX;
  if (given) return given;
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts/package.mjs'), '--out', out], {
    cwd: repoRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // The first line is the summary; the file list follows.
  const summary = (r.stdout ?? '').split('\n').find((l) => l.startsWith('package:'));
  if (r.status !== 0) throw new Error(`packaging the VSIX failed:\n${r.stdout}`);
  say(summary ?? `packaged ${out}`);
  return out;
}

function saveLogs(server: CodeServer, dest: string): void {
  mkdirSync(dest, { recursive: true });
  writeFileSync(join(dest, 'code-server.log'), server.log);
  const logs = join(server.userDataDir, 'logs');
  if (existsSync(logs)) cpSync(logs, join(dest, 'vscode-logs'), { recursive: true });
  say(`logs saved in ${relative(process.cwd(), dest)}`);
}

async function run(tools: Tools, files: string[]): Promise<number> {
  const state = mkdtempSync(join(tmpdir(), 'quant-lens-e2e-'));
  // A HOME and TMPDIR of its own, so that a scenario can see what the extension host leaves there.
  const home = join(state, 'home');
  const temp = join(state, 'tmp');
  mkdirSync(home);
  mkdirSync(temp);
  // Whatever the caller's environment says (CI=true silences onnxruntime by itself), the extension
  // must turn onnxruntime's telemetry off itself.
  withoutTelemetrySwitches(process.env);
  const server = new CodeServer({
    tools,
    stateDir: state,
    env: { HOME: home, TMPDIR: temp, XDG_CACHE_HOME: join(home, '.cache') },
  });
  try {
    const vsix = packageVsix(join(state, 'quant-lens.vsix'));
    const extensionDir = server.installExtension(vsix);
    say(`installed ${relative(state, extensionDir)} with --install-extension`);
    const workspace = join(state, 'workspace');
    writeWorkspace(workspace);
    rmSync(screenshotsRoot, { recursive: true, force: true });
    mkdirSync(screenshotsRoot, { recursive: true });
    const url = await server.start();
    say(`code-server listening on ${url}`);

    const retryLog = join(state, 'retries.log');
    writeFileSync(retryLog, '');
    const tests = spawnGroup(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
      {
        cwd: repoRoot,
        stdio: 'inherit',
        env: {
          ...process.env,
          ...toEnvVars({
            url,
            workspace,
            extensionDir,
            screenshotsDir: screenshotsRoot,
            home,
            temp,
            userData: server.userDataDir,
            retryLog,
          }),
        },
      },
    );
    const code = await exited(tests);
    await stopGroup(tests); // any Chromium the tests left behind
    // Retries are counted in the summary line: a suite that passes only on second tries is not healthy.
    const retried = readFileSync(retryLog, 'utf8').split('\n').filter(Boolean);
    say(
      `scenarios ${code === 0 ? 'passed' : `failed (exit ${code})`}, ${retried.length} retried; screenshots in ${relative(process.cwd(), screenshotsRoot)}`,
    );
    for (const r of retried) say(`  retried: ${r}`);
    if (code !== 0) saveLogs(server, join(screenshotsRoot, 'logs'));
    return code;
  } finally {
    await server.stop();
    if (process.env.QUANT_LENS_E2E_KEEP) say(`state kept in ${state}`);
    else rmSync(state, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  if (process.env[SKIP_VAR] === '1') {
    console.log(`e2e: SKIPPED because ${SKIP_VAR}=1 (CI never sets it)`);
    return 0;
  }
  let tools: Tools;
  try {
    tools = findTools();
  } catch (e) {
    console.error(`e2e: FAILED: ${(e as Error).message}`);
    return 1;
  }
  const files = scenarioFiles(process.argv.slice(2));
  if (files.length === 0) {
    console.error('e2e: FAILED: no scenario file matched');
    return 1;
  }
  return run(tools, files);
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`e2e: FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
