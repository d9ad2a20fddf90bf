/** The VSIX as installed by `code-server --install-extension`: its native dependency and its CLI. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { e2eEnv } from '../lib/env';
import { fixtures } from '../lib/fixtures';

describe('installed VSIX', () => {
  const env = e2eEnv();

  it('loads onnxruntime-node from its own node_modules and multiplies with it', () => {
    // Placed in dist/ so `require('onnxruntime-node')` resolves from where dist/worker.js resolves it.
    const probe = join(env.extensionDir, 'dist', 'e2e-ort-probe.js');
    buildSync({
      entryPoints: [join(import.meta.dirname, '../probes/ortProbe.ts')],
      outfile: probe,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      external: ['onnxruntime-node'],
      logLevel: 'error',
    });
    try {
      const r = spawnSync(env.node, [probe], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `probe failed:\n${r.stderr}`);
      const out = JSON.parse(r.stdout) as { product: number[]; onnxruntime: string };
      assert.deepEqual(out.product, [19, 22, 43, 50]);
      assert.ok(
        out.onnxruntime.startsWith(join(env.extensionDir, 'node_modules', 'onnxruntime-node')),
        `onnxruntime-node resolved outside the installed extension: ${out.onnxruntime}`,
      );
    } finally {
      rmSync(probe, { force: true });
    }
  });

  it('runs its CLI on a checkpoint', () => {
    const r = spawnSync(env.node, [join(env.extensionDir, 'dist', 'cli.js'), 'layers', '--all', fixtures.tiny.path], {
      cwd: env.workspace,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(fixtures.tiny.architecture));
    // A float linear layer of the fixture; which layers the CLI lists is the reader's business.
    assert.match(r.stdout, /model\.layers\.0\.self_attn\.q_proj\.weight/);
  });
});
