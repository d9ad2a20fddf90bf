/**
 * package.json repeats lists the code owns (commands, format and method choices, checkpoint file
 * names); VS Code reads only the manifest, so these tests hold the two together.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FACTOR_FORMAT_CHOICES, WEIGHT_FORMAT_CHOICES } from '../../../src/engine/quantizers';
import { METHOD_NAMES } from '../../../src/engine/methods/methods';
import { CHECKPOINT_FILE_NAMES, CHECKPOINT_READERS } from '../../../src/engine/readers/registry';
import { BLOCK_SIZE_CHOICES, DEFAULT_SETTINGS, MAX_SLIDER_RANK } from '../../../src/shared/quantSettings';
import { COMMANDS, INTERNAL_COMMANDS } from '../../../src/extension/commandIds';
import { LAYER_VIEW_TYPE } from '../../../src/shared/protocol/layer';
import { OVERVIEW_OPTIONAL_VIEW_TYPE, OVERVIEW_VIEW_TYPE } from '../../../src/shared/protocol/overview';
import { REVIVABLE_PANEL_VIEW_TYPES } from '../../../src/shared/protocol/panelTypes';

interface Manifest {
  activationEvents: string[];
  contributes: {
    commands: { command: string; title: string; category?: string }[];
    menus: Record<string, { command: string; when?: string }[]>;
    customEditors: { viewType: string; priority: string; selector: { filenamePattern: string }[] }[];
    views: Record<string, { id: string }[]>;
    configuration: { properties: Record<string, { default: unknown; enum?: unknown[]; maximum?: number }> };
  };
}

const root = join(import.meta.dirname, '../../..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
const settings = manifest.contributes.configuration.properties;

const escape = (s: string): string => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/** The explorer `when` clause for "a checkpoint file", from the readers' file names. */
function checkpointFileClause(): string {
  const extensions = CHECKPOINT_FILE_NAMES.filter((g) => /^\*\.[^.*]+$/.test(g)).map((g) => g.slice(2));
  const suffixes = CHECKPOINT_FILE_NAMES.filter((g) => g.startsWith('*') && !/^\*\.[^.*]+$/.test(g));
  const exact = CHECKPOINT_FILE_NAMES.filter((g) => !g.includes('*'));
  return [
    `resourceExtname =~ /^\\.(${extensions.join('|')})$/`,
    ...suffixes.map((g) => `resourceFilename =~ /${escape(g.slice(1))}$/`),
    ...exact.map((n) => `resourceFilename == ${n}`),
  ].join(' || ');
}

test('the contributed commands are the ones main.ts has handlers for, with their titles, in the "Quant Lens" category', () => {
  assert.deepEqual(
    manifest.contributes.commands.map((c) => [c.command, c.title]),
    Object.entries(COMMANDS),
  );
  for (const c of manifest.contributes.commands) assert.equal(c.category, 'Quant Lens', c.command);
});

test('menus name only contributed commands, and internal ones stay out of the palette', () => {
  for (const [menu, items] of Object.entries(manifest.contributes.menus)) {
    for (const item of items) assert.ok(item.command in COMMANDS, `${menu}: ${item.command}`);
  }
  const hidden = manifest.contributes.menus.commandPalette!.filter((m) => m.when === 'false').map((m) => m.command);
  assert.deepEqual(hidden.sort(), [...INTERNAL_COMMANDS].sort());
});

test('the settings offer exactly the methods, formats and block sizes the code knows, with its defaults', () => {
  assert.deepEqual(settings['quantLens.method']!.enum, ['auto', ...METHOD_NAMES]);
  assert.deepEqual(settings['quantLens.weightFormat']!.enum, WEIGHT_FORMAT_CHOICES);
  assert.deepEqual(settings['quantLens.factorFormat']!.enum, FACTOR_FORMAT_CHOICES);
  assert.deepEqual(settings['quantLens.blockSize']!.enum, BLOCK_SIZE_CHOICES);
  assert.equal(settings['quantLens.method']!.default, 'auto');
  assert.equal(settings['quantLens.weightFormat']!.default, DEFAULT_SETTINGS.weightFormat);
  assert.equal(settings['quantLens.blockSize']!.default, DEFAULT_SETTINGS.blockSize);
  assert.equal(settings['quantLens.factorFormat']!.default, DEFAULT_SETTINGS.factorFormat);
  assert.equal(settings['quantLens.rank']!.default, DEFAULT_SETTINGS.rank);
  assert.equal(settings['quantLens.rank']!.maximum, MAX_SLIDER_RANK);
  assert.equal(settings['quantLens.calibration']!.default, '');
});

test("the explorer offers Inspect, Compare with… and Compare Checkpoints… on exactly the readers' files and on checkpoint folders", () => {
  const explorer = manifest.contributes.menus['explorer/context']!;
  const inspect = explorer.find((m) => m.command === 'quantLens.inspectCheckpoint')!.when!;
  assert.equal(
    inspect,
    `(!explorerResourceIsFolder && (${checkpointFileClause()})) || (explorerResourceIsFolder && resourcePath in quantLens.checkpointFolders)`,
  );
  assert.equal(
    explorer.find((m) => m.command === 'quantLens.compareWith')!.when,
    `!listMultiSelection && (${inspect})`,
  );
  assert.equal(
    explorer.find((m) => m.command === 'quantLens.compareCheckpoints')!.when,
    `listMultiSelection && (${inspect})`,
  );
});

test("the overview editor's selectors and the workspace activation follow the readers", () => {
  const [byDefault, optional] = manifest.contributes.customEditors;
  const patterns = (editor: 'default' | 'option') =>
    CHECKPOINT_READERS.filter((r) => r.editor === editor).flatMap((r) => r.fileNames);
  assert.equal(byDefault!.viewType, OVERVIEW_VIEW_TYPE);
  assert.equal(optional!.viewType, OVERVIEW_OPTIONAL_VIEW_TYPE);
  assert.equal(byDefault!.priority, 'default');
  assert.deepEqual(
    byDefault!.selector.map((s) => s.filenamePattern),
    patterns('default'),
  );
  assert.equal(optional!.priority, 'option');
  assert.deepEqual(
    optional!.selector.map((s) => s.filenamePattern),
    patterns('option'),
  );
  assert.deepEqual(
    manifest.activationEvents.filter((e) => e.startsWith('workspaceContains:')),
    CHECKPOINT_READERS.flatMap((r) => r.activation ?? r.fileNames).map((g) => `workspaceContains:**/${g}`),
  );
});

test('the panels that revive after a reload wake the extension, and editor menus name the panels by their view types', () => {
  assert.deepEqual(
    manifest.activationEvents.filter((e) => e.startsWith('onWebviewPanel:')),
    REVIVABLE_PANEL_VIEW_TYPES.map((t) => `onWebviewPanel:${t}`),
  );
  const overviewPrefix = OVERVIEW_VIEW_TYPE.replace('.', '\\.');
  assert.ok(OVERVIEW_OPTIONAL_VIEW_TYPE.startsWith(OVERVIEW_VIEW_TYPE), 'one prefix matches both overview editors');
  const named: string[] = [];
  for (const item of manifest.contributes.menus['editor/title']!) {
    for (const id of item.when!.matchAll(/activeCustomEditorId =~ \/\^([^/]+)\//g)) named.push(id[1]!);
    for (const id of item.when!.matchAll(/activeWebviewPanelId == ([\w.]+)/g)) named.push(id[1]!);
  }
  assert.deepEqual([...new Set(named)].sort(), [LAYER_VIEW_TYPE, overviewPrefix].sort());
});
