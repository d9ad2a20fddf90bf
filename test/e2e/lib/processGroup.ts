/**
 * Child processes started in their own process group, so that stopping one also stops everything
 * it started (code-server's extension hosts, Chromium's renderers) — on success, on failure, and
 * when the runner itself is interrupted.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { constants } from 'node:os';

const live = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const c of live) killGroup(c, 'SIGKILL');
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      for (const c of live) killGroup(c, 'SIGKILL');
      process.exit(128 + constants.signals[signal]);
    });
  }
}

export function spawnGroup(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  hookExit();
  const child = spawn(command, args, { ...options, detached: true });
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

/** Waits for the child to exit; returns its exit code (or 128 + signal number). */
export function exited(child: ChildProcess): Promise<number> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0))),
  );
}

/** SIGTERM to the whole group, SIGKILL after `graceMs`, and SIGKILL to any stragglers at the end. */
export async function stopGroup(child: ChildProcess, graceMs = 5000): Promise<void> {
  const done = exited(child);
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
  // The leader can exit before the rest of its group (extension hosts, renderers).
  killGroup(child, 'SIGKILL');
  live.delete(child);
}
