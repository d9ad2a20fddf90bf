/**
 * Tests that read exports back with the Python libraries their users load them with (transformers,
 * PEFT, PyYAML, pydantic). The product never needs Python; these tests do. Where a package is
 * missing the test is skipped, loudly: the skip reason and a line on stderr name the pip install.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const PYTHON = process.env.QUANT_LENS_PYTHON ?? 'python3';

const checked = new Map<string, string | null>();

/** null when `python3` imports every module; else why not, with the pip command that fixes it. */
export function pythonMissing(modules: string[], pipPackages: string[] = modules): string | null {
  const key = modules.join(',');
  if (checked.has(key)) return checked.get(key)!;
  const r = spawnSync(PYTHON, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' });
  const why =
    r.status === 0
      ? null
      : `Python packages missing (${(r.stderr || r.error?.message || '').trim().split('\n').pop()}); this test needs: PIP_RETRIES=0 pip install ${pipPackages.join(' ')}`;
  if (why) process.stderr.write(`\n*** SKIPPED: ${why}\n\n`);
  checked.set(key, why);
  return why;
}

export const PYTHON_TESTS = join(import.meta.dirname, '..', 'python');

/** Runs a script from test/python and parses the JSON object it prints last on stdout. */
export function runPythonJson<T>(script: string, args: string[]): T {
  const r = spawnSync(PYTHON, [join(PYTHON_TESTS, script), ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${script} exited ${r.status}:\n${r.stderr}\n${r.stdout}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}
