/** The manifest's contributions agree with the code that registers them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Manifest {
  activationEvents: string[];
  contributes: {
    commands: { command: string; title: string; category?: string }[];
    menus: Record<string, { command: string; when?: string }[]>;
    customEditors: { viewType: string; priority: string; selector: { filenamePattern: string }[] }[];
    views: Record<string, { id: string }[]>;
    configuration: { properties: Record<string, { default: unknown }> };
  };
}

const root = join(import.meta.dirname, '../../..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
const main = readFileSync(join(root, 'src/extension/main.ts'), 'utf8');
const registered = [...main.matchAll(/command\(\s*'(quantLens\.\w+)'/g)].map((m) => m[1]!);

test('every registered command is contributed with the "Quant Lens" category, and only those', () => {
  const contributed = manifest.contributes.commands.map((c) => c.command);
  assert.deepEqual([...registered].sort(), [...contributed].sort());
  for (const c of manifest.contributes.commands) assert.equal(c.category, 'Quant Lens', c.command);
});

test('menus name only contributed commands, and internal ones stay out of the palette', () => {
  const contributed = new Set(manifest.contributes.commands.map((c) => c.command));
  for (const [menu, items] of Object.entries(manifest.contributes.menus)) {
    for (const item of items) assert.ok(contributed.has(item.command), `${menu}: ${item.command}`);
  }
  const hidden = manifest.contributes.menus.commandPalette!.filter((m) => m.when === 'false').map((m) => m.command);
  assert.deepEqual(hidden.sort(), [
    'quantLens.compareWith',
    'quantLens.openLayer',
    'quantLens.sortLayersByError',
    'quantLens.sortLayersByStructure',
  ]);
});

test('the explorer offers Inspect Checkpoint on every checkpoint format and on folders', () => {
  const when = manifest.contributes.menus['explorer/context']!.find(
    (m) => m.command === 'quantLens.inspectCheckpoint',
  )!.when!;
  for (const ext of ['safetensors', 'onnx', 'gguf', 'bin', 'pt', 'pth']) assert.ok(when.includes(ext), ext);
  assert.ok(when.includes('safetensors\\.index\\.json') && when.includes('model.json'));
  assert.ok(when.includes('explorerResourceIsFolder && resourcePath in quantLens.checkpointFolders'));
});

test('the explorer offers Compare with… on one checkpoint and Compare Checkpoints… on a multiple selection', () => {
  const explorer = manifest.contributes.menus['explorer/context']!;
  const inspect = explorer.find((m) => m.command === 'quantLens.inspectCheckpoint')!.when!;
  const compareWith = explorer.find((m) => m.command === 'quantLens.compareWith')!.when!;
  const compareTwo = explorer.find((m) => m.command === 'quantLens.compareCheckpoints')!.when!;
  assert.equal(compareWith, `!listMultiSelection && (${inspect})`);
  assert.equal(compareTwo, `listMultiSelection && (${inspect})`);
  const titles = new Map(manifest.contributes.commands.map((c) => [c.command, c.title]));
  assert.equal(titles.get('quantLens.compareCheckpoints'), 'Compare Checkpoints…');
  assert.equal(titles.get('quantLens.compareWith'), 'Compare with…');
  assert.ok(
    manifest.activationEvents.includes('onWebviewPanel:quantLens.compare'),
    'comparisons revive after a reload',
  );
  assert.ok(main.includes('comparisons.register()'), 'the comparison panels register their serializer');
});

test('the overview is the default editor for safetensors and GGUF, an option for the rest', () => {
  const [byDefault, optional] = manifest.contributes.customEditors;
  assert.equal(byDefault!.priority, 'default');
  assert.deepEqual(
    byDefault!.selector.map((s) => s.filenamePattern),
    ['*.safetensors', '*.gguf'],
  );
  assert.equal(optional!.priority, 'option');
  assert.ok(main.includes('OVERVIEW_VIEW_TYPE') && main.includes('OVERVIEW_OPTIONAL_VIEW_TYPE'));
  assert.ok(manifest.activationEvents.includes('onWebviewPanel:quantLens.layer'), 'panels revive after a reload');
});

test('settings default to MXINT4 / block 16 / MXINT8 / automatic method / rank 32', () => {
  const p = manifest.contributes.configuration.properties;
  assert.equal(p['quantLens.weightFormat']!.default, 'mxint4');
  assert.equal(p['quantLens.blockSize']!.default, 16);
  assert.equal(p['quantLens.factorFormat']!.default, 'mxint8');
  assert.equal(p['quantLens.method']!.default, 'auto');
  assert.equal(p['quantLens.rank']!.default, 32);
  assert.equal(p['quantLens.calibration']!.default, '');
});
