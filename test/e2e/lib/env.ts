/** What test/e2e/run.ts hands to the scenario files, through environment variables. */
import { findTools } from './environment';

export interface E2eEnv {
  /** code-server's URL, e.g. http://127.0.0.1:40123 */
  url: string;
  /** The workspace folder with the fixture checkpoints (see fixtures.ts). */
  workspace: string;
  /** Where the VSIX was installed: code-server's extensions folder / publisher.name-version. */
  extensionDir: string;
  screenshotsDir: string;
  /** code-server's own HOME and TMPDIR (empty folders at the start): what the extension leaves there shows. */
  home: string;
  temp: string;
  /** code-server's user-data folder (User/settings.json, User/globalStorage/…). */
  userData: string;
  /** A file each retried scenario appends its title to, for the run's summary line. */
  retryLog: string;
  chromium: string;
  /** Node 24: the runtime of code-server's extension host. */
  node: string;
}

const VARS = {
  url: 'QUANT_LENS_E2E_URL',
  workspace: 'QUANT_LENS_E2E_WORKSPACE',
  extensionDir: 'QUANT_LENS_E2E_EXTENSION_DIR',
  screenshotsDir: 'QUANT_LENS_E2E_SCREENSHOTS',
  home: 'QUANT_LENS_E2E_HOME',
  temp: 'QUANT_LENS_E2E_TMPDIR',
  userData: 'QUANT_LENS_E2E_USER_DATA',
  retryLog: 'QUANT_LENS_E2E_RETRY_LOG',
} as const;

export function toEnvVars(env: Pick<E2eEnv, keyof typeof VARS>): Record<string, string> {
  return Object.fromEntries(Object.entries(VARS).map(([k, v]) => [v, env[k as keyof typeof VARS]]));
}

export function e2eEnv(): E2eEnv {
  const values = Object.fromEntries(Object.entries(VARS).map(([k, v]) => [k, process.env[v]]));
  const missing = Object.entries(VARS).filter(([k]) => !values[k]);
  if (missing.length) {
    throw new Error(
      `${missing.map(([, v]) => v).join(', ')} not set: run the e2e suite with \`npm run test:e2e\`, which starts code-server first`,
    );
  }
  const tools = findTools();
  return { ...(values as Pick<E2eEnv, keyof typeof VARS>), chromium: tools.chromium, node: tools.node };
}
