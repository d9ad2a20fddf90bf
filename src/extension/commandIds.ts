/**
 * Every command the extension contributes, with its palette title: main.ts registers a handler for
 * each (its handler table is typed by this list) and the manifest test holds package.json's
 * `contributes.commands` to it. Free of `vscode` so unit tests can read it.
 */
export const COMMANDS = {
  'quantLens.inspectCheckpoint': 'Inspect Checkpoint',
  'quantLens.inspectLayer': 'Inspect Layer…',
  'quantLens.analyzeAll': 'Analyze All Layers',
  'quantLens.setCalibration': 'Set Calibration…',
  'quantLens.compareMethods': 'Compare Methods',
  'quantLens.compareCheckpoints': 'Compare Checkpoints…',
  'quantLens.compareWith': 'Compare with…',
  'quantLens.exportCheckpoint': 'Export Quantized Checkpoint…',
  'quantLens.exportReport': 'Export Report…',
  'quantLens.cancelAnalysis': 'Cancel Running Analysis',
  'quantLens.openLayer': 'Open Layer',
  'quantLens.sortLayersByError': 'Sort Layers by Error',
  'quantLens.sortLayersByStructure': 'Sort Layers by Block',
  'quantLens.openResultStore': 'Open Result Store…',
  'quantLens.showLog': 'Show Log',
} as const;

export type CommandId = keyof typeof COMMANDS;

/** Commands reached only through a button, a tree item or another command: hidden from the palette. */
export const INTERNAL_COMMANDS: readonly CommandId[] = [
  'quantLens.openLayer',
  'quantLens.sortLayersByError',
  'quantLens.sortLayersByStructure',
  'quantLens.compareWith',
];
