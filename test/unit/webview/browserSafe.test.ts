/**
 * Webviews run in a browser: nothing they bundle may reach Node, onnxruntime or vscode. ESLint's
 * import rules stop a webview file from importing such a module directly; this test follows every
 * value import from the webview entries, through src/shared and src/engine, to the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { browserSafeEngine } from '../../../eslint.config.mjs';

const root = join(import.meta.dirname, '../../..');
const forbidden = new Set([...builtinModules, 'onnxruntime-node', 'vscode']);

/** Module specifiers a file imports for their values (type-only imports are erased by the bundler). */
function valueImports(source: string): string[] {
  const specs: string[] = [];
  for (const m of source.matchAll(/^\s*(import|export)\s+(type\s+)?([^'"]*?)\s*from\s*'([^']+)'/gm)) {
    if (!m[2]) specs.push(m[4]!);
  }
  for (const m of source.matchAll(/^\s*import\s+'([^']+)'/gm)) specs.push(m[1]!);
  return specs;
}

function resolveLocal(from: string, spec: string): string | null {
  const base = join(dirname(from), spec);
  for (const candidate of [`${base}.ts`, join(base, 'index.ts')]) if (existsSync(candidate)) return candidate;
  return null;
}

function entries(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? entries(p) : name.endsWith('.ts') ? [p] : [];
  });
}

test('nothing the webviews import reaches Node, onnxruntime or vscode', () => {
  const seen = new Map<string, string>(); // file → the file that imported it
  const queue = entries(join(root, 'webview'));
  for (const f of queue) seen.set(f, '(entry)');
  const problems: string[] = [];
  while (queue.length > 0) {
    const file = queue.pop()!;
    for (const spec of valueImports(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = resolveLocal(file, spec);
        if (target && !seen.has(target)) {
          seen.set(target, file);
          queue.push(target);
        }
      } else if (forbidden.has(spec.replace(/^node:/, '').split('/')[0]!)) {
        const chain = [relative(root, file)];
        for (let f = seen.get(file); f && f !== '(entry)'; f = seen.get(f)) chain.push(relative(root, f));
        problems.push(`${spec} ← ${chain.join(' ← ')}`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(
    [...seen.keys()].some((f) => f.includes('src/engine/quantizers')),
    'the walk reaches the engine',
  );
});

test('the engine modules webviews may import say in their headers that they are browser-safe', () => {
  for (const module of browserSafeEngine) {
    const source = readFileSync(join(root, 'src/engine', `${module}.ts`), 'utf8');
    const header = /^\/\*\*[\s\S]*?\*\//.exec(source)?.[0] ?? '';
    assert.match(header, /browser-safe/i, module);
  }
});
