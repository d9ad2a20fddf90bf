/**
 * Desktop VS Code through @vscode/test-cli / @vscode/test-electron (.vscode-test.mjs). Usable
 * where a VS Code executable is installed (or named by VSCODE_EXECUTABLE) or one can be
 * downloaded, and where there is a display (or xvfb-run to make one).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../e2e/lib/environment';

export interface ElectronHost {
  /** An installed VS Code, or undefined to let test-electron download (or reuse) one. */
  executable: string | undefined;
  /** Wrap the run in xvfb-run (Linux without a display). */
  xvfb: boolean;
}

const installed: Partial<Record<NodeJS.Platform, string[]>> = {
  linux: ['/usr/share/code/code', '/snap/code/current/usr/share/code/code', '/opt/visual-studio-code/code'],
  darwin: [
    '/Applications/Visual Studio Code.app/Contents/MacOS/Electron',
    '/Applications/Visual Studio Code.app/Contents/MacOS/Code',
  ],
  win32: [
    join(process.env.LOCALAPPDATA ?? '', 'Programs/Microsoft VS Code/Code.exe'),
    join(process.env.ProgramFiles ?? '', 'Microsoft VS Code/Code.exe'),
  ],
};

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

async function canDownload(): Promise<boolean> {
  const cache = join(repoRoot, '.vscode-test');
  if (existsSync(cache) && readdirSync(cache).some((d) => d.startsWith('vscode-'))) return true;
  try {
    const r = await fetch('https://update.code.visualstudio.com/api/releases/stable', {
      signal: AbortSignal.timeout(5000),
    });
    return r.ok;
  } catch {
    return false;
  }
}

/** An Electron host, or the reason there is none. */
export async function findElectronHost(): Promise<ElectronHost | string> {
  const executable = process.env.VSCODE_EXECUTABLE ?? installed[process.platform]?.find((p) => existsSync(p));
  if (executable && !existsSync(executable)) return `VSCODE_EXECUTABLE=${executable} does not exist`;
  if (!executable && !(await canDownload())) {
    return 'no VS Code executable is installed (set VSCODE_EXECUTABLE) and none can be downloaded';
  }
  const headless = process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY;
  if (headless && !onPath('xvfb-run')) return 'there is no display and no xvfb-run (apt-get install xvfb)';
  return { executable, xvfb: headless };
}

export function runInElectron(host: ElectronHost): number {
  const cli = [
    process.execPath,
    join(repoRoot, 'node_modules/@vscode/test-cli/out/bin.mjs'),
    '--config',
    '.vscode-test.mjs',
  ];
  const [command, ...args] = host.xvfb ? ['xvfb-run', '-a', ...cli] : cli;
  const r = spawnSync(command!, args, {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, ...(host.executable ? { VSCODE_EXECUTABLE: host.executable } : {}) },
  });
  return r.status ?? 1;
}
