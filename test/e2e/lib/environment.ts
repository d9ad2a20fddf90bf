/**
 * Where the e2e suite finds its tools. Each can be overridden by an environment variable; the
 * defaults are where test/e2e/setup/install-code-server.sh and Debian's chromium package put them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../../..');
export const screenshotsRoot = join(repoRoot, 'test/e2e/screenshots');

interface Versions {
  codeServer: string;
  node: string;
}

export interface Tools {
  /** Node 24, which code-server requires and which runs the extension host. */
  node: string;
  /** code-server's entry script (run with `node`). */
  codeServerEntry: string;
  chromium: string;
}

export const SKIP_VAR = 'QUANT_LENS_SKIP_E2E';
const setupHint =
  'Run `bash test/e2e/setup/install-code-server.sh` (and `apt-get install chromium`), ' +
  `or set ${SKIP_VAR}=1 to leave the e2e suite out of a quick local run.`;

export function cacheRoot(): string {
  return process.env.QUANT_LENS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'quant-lens');
}

function versions(): Versions {
  return JSON.parse(readFileSync(join(repoRoot, 'test/e2e/setup/versions.json'), 'utf8')) as Versions;
}

/** Finds the tools or throws one error that names every missing piece and how to install it. */
export function findTools(): Tools {
  const v = versions();
  const tools: Tools = {
    node: process.env.QUANT_LENS_NODE24 ?? join(cacheRoot(), `node-${v.node}`, 'bin/node'),
    codeServerEntry:
      process.env.QUANT_LENS_CODE_SERVER ??
      join(cacheRoot(), `code-server-${v.codeServer}`, 'node_modules/code-server/out/node/entry.js'),
    chromium: process.env.QUANT_LENS_CHROMIUM ?? '/usr/bin/chromium',
  };
  const missing = Object.entries(tools)
    .filter(([, path]) => !existsSync(path))
    .map(([name, path]) => `  ${name}: ${path}`);
  if (missing.length) {
    throw new Error(`The e2e suite cannot run; not found:\n${missing.join('\n')}\n${setupHint}`);
  }
  return tools;
}
