/**
 * code-server's extension host, for machines without desktop VS Code. The browser workbench runs
 * extension tests when its URL carries a `payload` with extensionDevelopmentPath and
 * extensionTestsPath, but only with the smoke-test driver enabled, which code-server has no flag
 * for: an init script sets it in the page's workbench configuration before the workbench reads
 * it. The tests run with @vscode/test-cli's own mocha runner (runner.cjs) and the options it
 * reads from VSCODE_TEST_OPTIONS; the workbench reports the exit code via codeAutomationExit.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CodeServer } from '../../e2e/lib/codeServer';
import { repoRoot, type Tools } from '../../e2e/lib/environment';

export interface MochaRun {
  files: string[];
  preload: string[];
  mochaOpts: Record<string, unknown>;
  workspace: string;
}

/**
 * Sets developmentOptions.enableSmokeTestDriver in the workbench configuration the page carries
 * in a <meta> tag, as soon as the parser adds it. Kept as source text: a function would be
 * serialized after tsx's transform, which can reference helpers that do not exist in the page.
 */
const enableSmokeTestDriver = `
new MutationObserver((_, observer) => {
  const meta = document.getElementById('vscode-workbench-web-configuration');
  const settings = meta && meta.getAttribute('data-settings');
  if (!settings) return;
  const config = JSON.parse(settings);
  config.developmentOptions = { ...config.developmentOptions, enableSmokeTestDriver: true };
  meta.setAttribute('data-settings', JSON.stringify(config));
  observer.disconnect();
}).observe(document, { childList: true, subtree: true });
`;

export async function runInCodeServer(tools: Tools, run: MochaRun, timeoutMs = 180_000): Promise<number> {
  const state = mkdtempSync(join(tmpdir(), 'quant-lens-exthost-'));
  const log = join(state, 'mocha.log');
  writeFileSync(log, '');
  const server = new CodeServer({
    tools,
    stateDir: state,
    env: {
      VSCODE_TEST_OPTIONS: JSON.stringify({ ...run, colorDefault: false }),
      QUANT_LENS_EXTHOST_LOG: log,
    },
  });
  let printed = 0;
  const flush = () => {
    const text = readFileSync(log, 'utf8');
    process.stdout.write(text.slice(printed));
    printed = text.length;
  };
  const browser = await chromium.launch({ executablePath: tools.chromium, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const url = new URL(await server.start());
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (process.env.QUANT_LENS_EXTHOST_DEBUG) console.log(`[workbench ${m.type()}] ${m.text().slice(0, 500)}`);
      if (m.type() === 'error') errors.push(m.text().split('\n')[0]!.slice(0, 300));
    });
    await page.addInitScript({ content: enableSmokeTestDriver });
    const exitCode = new Promise<number>((resolve) => {
      void page.exposeFunction('codeAutomationExit', (code: number) => resolve(code));
    });
    const remote = (path: string) => `vscode-remote://${url.host}${path}`;
    const payload = [
      ['extensionDevelopmentPath', remote(repoRoot)],
      ['extensionTestsPath', remote(join(repoRoot, 'node_modules/@vscode/test-cli/out/runner.cjs'))],
    ];
    const query = `folder=${encodeURIComponent(run.workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    await page.goto(`${url.origin}/?${query}`);
    const ticker = setInterval(flush, 250);
    const timeout = new Promise<number>((resolve) =>
      setTimeout(() => {
        console.error(`exthost: no result from code-server's extension host within ${timeoutMs / 1000} s`);
        resolve(1);
      }, timeoutMs).unref(),
    );
    const code = await Promise.race([exitCode, timeout]);
    clearInterval(ticker);
    flush();
    if (code !== 0 && errors.length) {
      console.error(`exthost: the workbench logged these errors:\n  ${errors.slice(-30).join('\n  ')}`);
    }
    return code;
  } finally {
    await browser.close();
    await server.stop();
    rmSync(state, { recursive: true, force: true });
  }
}
