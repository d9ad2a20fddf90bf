/**
 * node:test glue for workbench scenarios. A suite opens one browser page on code-server and runs
 * its scenarios in order on it; each scenario leaves a screenshot, and the editors are closed
 * between scenarios. A failing scenario leaves a FAILED- screenshot, and the page is reloaded so
 * the next scenario starts from a fresh workbench. A body can add screenshots of its own steps
 * with `wb.screenshot(label)`.
 *
 *   describe('Inspect Checkpoint', () => {
 *     const suite = workbenchSuite('inspect-checkpoint');
 *     suite.scenario('from the explorer', async (wb) => { … });
 *   });
 */
import { after, before, it } from 'node:test';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { chromium, type Browser, type ConsoleMessage } from 'playwright-core';
import { e2eEnv, type E2eEnv } from './env';
import { Workbench } from './workbench';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export type ScenarioBody = (wb: Workbench, env: E2eEnv) => Promise<void>;

export interface WorkbenchSuite {
  scenario(name: string, body: ScenarioBody): void;
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

/**
 * Problems inside a webview fail the scenario even when what it checked looked right: a CSP
 * violation (its console message seldom says which frame it came from, and the workbench's own
 * offline noise has none), or an uncaught error thrown by a script the extension serves (webview
 * resources come from *.vscode-cdn.net URLs). The workbench's offline errors (gallery, GitHub
 * authentication) are not counted.
 */
const WEBVIEW_SCRIPT = /vscode-cdn|vscode-resource|\/webview\/browser\/pre\//;

function cspViolation(m: ConsoleMessage): string | undefined {
  return m.type() === 'error' && /Content Security Policy/.test(m.text()) ? `CSP: ${m.text()}` : undefined;
}

function webviewScriptError(e: Error): string | undefined {
  return WEBVIEW_SCRIPT.test(e.stack ?? '') ? `uncaught in a webview: ${e.stack}` : undefined;
}

export function workbenchSuite(name: string): WorkbenchSuite {
  const env = e2eEnv();
  const dir = join(env.screenshotsDir, slug(name));
  let browser: Browser | undefined;
  let wb: Workbench | undefined;
  let fresh = true;
  let count = 0;
  const problems: string[] = [];

  before(async () => {
    mkdirSync(dir, { recursive: true });
    browser = await chromium.launch({ executablePath: env.chromium, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('console', (m) => {
      const problem = cspViolation(m);
      if (problem) problems.push(problem);
    });
    page.on('pageerror', (e) => {
      const problem = webviewScriptError(e);
      if (problem) problems.push(problem);
    });
    wb = new Workbench(page, env.url, env.workspace);
  });

  after(async () => {
    await browser?.close();
  });

  return {
    scenario(title, body) {
      it(title, { timeout: 360_000 }, async () => {
        const w = wb!;
        const n = String(++count).padStart(2, '0');
        const file = (prefix: string) => join(dir, `${n}-${prefix}${slug(title)}.png`);
        w.shots = { dir, prefix: `${n}-${slug(title)}` };
        // A scenario that fails gets one more try in a reloaded workbench: driving a real workbench
        // through the UI loses a click or a focus now and then on a loaded 2-core machine. A retry
        // is reported, and a scenario that fails twice fails.
        for (let attempt = 1; ; attempt++) {
          if (fresh) await w.open();
          fresh = false;
          problems.length = 0;
          try {
            await body(w, env);
            if (problems.length) throw new Error(`the webview reported problems:\n  ${problems.join('\n  ')}`);
            await w.page.screenshot({ path: file('') });
            break;
          } catch (e) {
            const shot = file(attempt === 1 ? 'FAILED-' : 'FAILED-again-');
            await w.page.screenshot({ path: shot }).catch(() => undefined);
            fresh = true;
            // Where keyboard focus was: a quick input or list that hid by itself lost it to someone.
            const focus = await w.focusedElement().catch(() => 'unknown');
            const message = `${e instanceof Error ? e.message : String(e)}\n(focus at the failure: ${focus})`;
            if (attempt === 1 && !problems.length) {
              // The whole message: Playwright's call log says why an action waited (not visible, not
              // stable, covered by another element, outside the viewport), which is the root cause.
              console.warn(
                `e2e: "${title}" failed, trying once more: ${message.split('\n').slice(0, 25).join('\n    ')}`,
              );
              appendFileSync(env.retryLog, `${title}: ${message.split('\n')[0]}\n`);
              await w.closeAllEditors().catch(() => undefined);
              continue;
            }
            throw new Error(`${message}\n(screenshot: ${relative(process.cwd(), shot)})`, { cause: e });
          }
        }
        try {
          await w.closeAllEditors();
        } catch (e) {
          console.warn(`closing the editors failed, the next scenario reloads the workbench: ${String(e)}`);
          fresh = true;
        }
      });
    },
  };
}
