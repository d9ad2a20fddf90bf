// Builds a platform-specific VSIX: `npm run package [-- --target linux-x64] [--out file.vsix]`.
// The target defaults to this machine's platform. onnxruntime-node ships native binaries for five
// platforms (288 MB); a VSIX carries only its target's, so the ignore file vsce reads is
// .vscodeignore plus one line that lets that folder in. The packed VSIX's file list is then
// checked: the bundles and that binary are in, sources, tests, maps and other binaries are not.
import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(import.meta.dirname, '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** vsce target → onnxruntime-node binary folder (the platforms onnxruntime-node 1.30 ships). */
const ortFolders = {
  'linux-x64': 'linux/x64',
  'linux-arm64': 'linux/arm64',
  'darwin-arm64': 'darwin/arm64',
  'win32-x64': 'win32/x64',
  'win32-arm64': 'win32/arm64',
};

const { values } = parseArgs({
  options: { target: { type: 'string' }, out: { type: 'string' } },
});
const target = values.target ?? `${process.platform}-${process.arch}`;
const ortFolder = ortFolders[target];
if (!ortFolder) {
  console.error(
    `package: no onnxruntime-node binaries for target "${target}"; one of: ${Object.keys(ortFolders).join(', ')}`,
  );
  process.exit(2);
}
const out = resolve(values.out ?? join(root, `${manifest.name}-${target}-${manifest.version}.vsix`));

const work = mkdtempSync(join(tmpdir(), 'quant-lens-package-'));
const ignoreFile = join(work, 'vscodeignore');
writeFileSync(
  ignoreFile,
  readFileSync(join(root, '.vscodeignore'), 'utf8') + `!node_modules/onnxruntime-node/bin/napi-v6/${ortFolder}/*\n`,
);

/** Names in a zip's central directory (a VSIX is a zip); enough of the format to check a package. */
function zipEntries(buf) {
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error(`${out} is not a zip file`);
  const count = buf.readUInt16LE(eocd + 10);
  const names = [];
  for (let i = 0, p = buf.readUInt32LE(eocd + 16); i < count; i++) {
    const nameLength = buf.readUInt16LE(p + 28);
    const extraLength = buf.readUInt16LE(p + 30);
    const commentLength = buf.readUInt16LE(p + 32);
    names.push(buf.toString('utf8', p + 46, p + 46 + nameLength));
    p += 46 + nameLength + extraLength + commentLength;
  }
  return names;
}

function vsce(args) {
  const r = spawnSync(process.execPath, [join(root, 'node_modules/@vscode/vsce/vsce'), ...args], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) {
    process.stdout.write(r.stdout ?? '');
    console.error(`package: vsce ${args[0]} failed`);
    process.exit(r.status ?? 1);
  }
  return r.stdout;
}

try {
  // `vsce package` runs vscode:prepublish (the production build) first.
  vsce(['package', '--target', target, '--ignoreFile', ignoreFile, '--no-rewrite-relative-links', '--out', out]);
  const files = zipEntries(readFileSync(out))
    .filter((f) => f.startsWith('extension/'))
    .map((f) => f.slice('extension/'.length));
  const required = [
    'package.json',
    'dist/extension.js',
    'dist/worker.js',
    'dist/eigen-helper.js',
    'dist/cli.js',
    'dist/webview/overview.entry.js',
    'node_modules/onnxruntime-node/dist/index.js',
    'node_modules/onnxruntime-common/dist/cjs/index.js',
    `node_modules/onnxruntime-node/bin/napi-v6/${ortFolder}/onnxruntime_binding.node`,
  ];
  const missing = required.filter((f) => !files.includes(f));
  const stray = files.filter(
    (f) =>
      /^(src|test|webview|scripts|\.vscode|\.ci)\//.test(f) ||
      f.endsWith('.ts') ||
      f.endsWith('.map') ||
      (f.includes('/bin/napi-v6/') && !f.includes(`/bin/napi-v6/${ortFolder}/`)),
  );
  if (missing.length || stray.length) {
    if (missing.length) console.error(`package: missing from the VSIX: ${missing.join(', ')}`);
    if (stray.length) console.error(`package: must not be in the VSIX: ${stray.join(', ')}`);
    rmSync(out, { force: true });
    process.exit(1);
  }
  const mb = (statSync(out).size / 2 ** 20).toFixed(1);
  console.log(`package: ${relative(process.cwd(), out) || out} (${target}): ${files.length} files, ${mb} MiB`);
  for (const f of files) console.log(`  ${f}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
