/**
 * Extension-host suite runner: `npm run test:exthost`.
 *
 * Compiles test/exthost/suite/*.test.ts to out/exthost (with the e2e fixtures as workspace),
 * builds the extension, and runs the suite inside a real VS Code extension host:
 * - desktop VS Code through @vscode/test-cli + @vscode/test-electron (.vscode-test.mjs) where an
 *   executable is installed or can be downloaded;
 * - otherwise code-server's extension host, where the e2e setup installed code-server;
 * - otherwise it prints one line saying why it did not run, and exits 0.
 * QUANT_LENS_EXTHOST=electron|code-server forces one host (and fails if it is not there).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';
import { findTools, repoRoot } from '../e2e/lib/environment';
import { writeWorkspace } from '../e2e/lib/fixtures';
import { findElectronHost, runInElectron } from './hosts/electron';
import { runInCodeServer } from './hosts/codeServer';

const outDir = join(repoRoot, 'out/exthost');
const suiteDir = join(repoRoot, 'test/exthost/suite');

function build(): string[] {
  rmSync(outDir, { recursive: true, force: true });
  const tests = readdirSync(suiteDir).filter((f) => f.endsWith('.test.ts'));
  buildSync({
    entryPoints: [...tests.map((f) => join(suiteDir, f)), join(repoRoot, 'test/exthost/captureReporter.ts')],
    outdir: outDir,
    outbase: join(repoRoot, 'test/exthost'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode', 'mocha', 'onnxruntime-node'],
    sourcemap: 'inline',
    logLevel: 'error',
  });
  writeWorkspace(join(outDir, 'workspace'));
  const dist = spawnSync(process.execPath, ['esbuild.mjs'], { cwd: repoRoot, stdio: 'inherit' });
  if (dist.status !== 0) throw new Error('building the extension failed');
  return tests.map((f) => join(outDir, 'suite', f.replace(/\.ts$/, '.js')));
}

/** The mocha options of .vscode-test.mjs, so both hosts run the suite alike. */
async function mochaOptions(): Promise<Record<string, unknown>> {
  const url = pathToFileURL(join(repoRoot, '.vscode-test.mjs')).href;
  const { default: config } = (await import(url)) as { default: { mocha?: Record<string, unknown> } };
  return config.mocha ?? {};
}

async function main(): Promise<number> {
  const forced = process.env.QUANT_LENS_EXTHOST;
  const electron =
    forced === 'code-server' ? 'not asked for (QUANT_LENS_EXTHOST=code-server)' : await findElectronHost();
  let tools: ReturnType<typeof findTools> | string;
  try {
    tools = findTools();
  } catch (e) {
    tools = (e as Error).message.split('\n')[0]!;
  }

  if (typeof electron !== 'string') {
    build();
    console.log(
      `exthost: running in desktop VS Code (${electron.executable ?? 'downloaded by @vscode/test-electron'})`,
    );
    return runInElectron(electron);
  }
  if (forced === 'electron') {
    console.error(`exthost: FAILED: QUANT_LENS_EXTHOST=electron but ${electron}`);
    return 1;
  }
  if (typeof tools === 'string') {
    console.log(`exthost: SKIPPED: ${electron}, and code-server is not installed either`);
    return 0;
  }
  console.log(`exthost: no desktop VS Code (${electron}); running the suite in code-server's extension host`);
  const files = build();
  return runInCodeServer(tools, {
    files,
    preload: [join(outDir, 'captureReporter.js')],
    mochaOpts: { ...(await mochaOptions()), reporter: 'spec' },
    workspace: join(outDir, 'workspace'),
  });
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`exthost: FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
