// One esbuild bundle per place the code runs: extension host, worker, its eigenvalue helper, CLI (node, cjs) and the
// webviews (browser, iife). onnxruntime-node stays external: it is a native module that the VSIX
// ships in node_modules and that Node resolves from dist/ at run time.
import * as esbuild from 'esbuild';
import { cpSync, mkdirSync, existsSync, readdirSync, rmSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
// A production build (the VSIX's) starts from an empty dist/, so no source map or bundle left by
// an earlier build can slip into the package.
if (production) rmSync('dist', { recursive: true, force: true });

const nodeTargets = [
  { entryPoints: ['src/extension/main.ts'], outfile: 'dist/extension.js', external: ['vscode', 'onnxruntime-node'] },
  { entryPoints: ['src/worker/main.ts'], outfile: 'dist/worker.js', external: ['onnxruntime-node'] },
  { entryPoints: ['src/worker/eigenHelper.ts'], outfile: 'dist/eigen-helper.js', external: ['onnxruntime-node'] },
  {
    entryPoints: ['src/cli/main.ts'],
    outfile: 'dist/cli.js',
    external: ['onnxruntime-node'],
    banner: { js: '#!/usr/bin/env node' },
  },
].filter((t) => existsSync(t.entryPoints[0]));

const webviewEntries = existsSync('webview')
  ? readdirSync('webview')
      .filter((f) => /^[a-z][\w-]*\.entry\.ts$/.test(f))
      .map((f) => `webview/${f}`)
  : [];

const common = {
  bundle: true,
  minify: production,
  sourcemap: !production,
  sourcesContent: false,
  logLevel: 'warning',
  legalComments: 'none',
};

const builds = [...nodeTargets.map((t) => ({ ...common, ...t, platform: 'node', format: 'cjs', target: 'node20' }))];
if (webviewEntries.length) {
  builds.push({
    ...common,
    entryPoints: webviewEntries,
    outdir: 'dist/webview',
    entryNames: '[name]',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    tsconfig: 'webview/tsconfig.json',
  });
}

function copyStatic() {
  mkdirSync('dist/webview', { recursive: true });
  if (existsSync('media/webview.css')) cpSync('media/webview.css', 'dist/webview/webview.css');
}

if (watch) {
  for (const b of builds) {
    const ctx = await esbuild.context(b);
    await ctx.watch();
  }
  copyStatic();
  console.log('esbuild: watching for changes');
} else {
  const t0 = Date.now();
  await Promise.all(builds.map((b) => esbuild.build(b)));
  copyStatic();
  console.log(`esbuild: ${builds.length} bundle(s) in ${Date.now() - t0} ms`);
}
