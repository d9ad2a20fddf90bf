/** Extension entry point: wires the engine, the sessions, the editors, the tree and the commands. */
import * as vscode from 'vscode';
import { statSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { pickInFolder } from '../engine/readers/open';
import { CHECKPOINT_FILE_NAMES, readerForName } from '../engine/readers/registry';
import { disableOrtTelemetry } from '../engine/ort';
import { removeTemporaryOutputs } from '../engine/writers/safeOutput';
import {
  analyzeAll,
  compareCheckpointMethods,
  exportQuantizedCheckpoint,
  exportReport,
  type Services,
} from './commands/checkpointCommands';
import { setCalibration } from './commands/calibrationCommand';
import { CalibrationService } from './services/calibrationService';
import { COMMANDS, type CommandId } from './commandIds';
import { OverviewEditorProvider } from './panels/overviewEditor';
import { OVERVIEW_OPTIONAL_VIEW_TYPE, OVERVIEW_VIEW_TYPE } from '../shared/protocol/overview';
import { CheckpointFolderIndex } from './views/checkpointFolders';
import { ComparisonPanels } from './panels/comparisonPanel';
import type { CheckpointSession } from './services/checkpointSession';
import { EngineService } from './services/engineService';
import { JobTracker } from './services/jobTracker';
import { LayerPanels } from './panels/layerPanel';
import { pickLayer } from './commands/layerPicker';
import { LAYERS_VIEW_ID, LayersTreeProvider } from './views/layersTree';
import { Reporter } from './logging';
import { SessionRegistry } from './services/sessionRegistry';
import { resultStorePath, setResultStorePath } from './configuration';
import { ResultStore } from '../engine/store/resultStore';
import { errorMessage } from '../engine/errors';

/** The file dialog's filter: the last extension of every checkpoint file name the readers offer. */
const CHECKPOINT_EXTENSIONS = [...new Set(CHECKPOINT_FILE_NAMES.map((g) => g.slice(g.lastIndexOf('.') + 1)))];

/** The overview editor that opens a checkpoint file: the default one where it is the default. */
export function overviewViewType(path: string): string {
  return readerForName(basename(path))?.editor === 'default' ? OVERVIEW_VIEW_TYPE : OVERVIEW_OPTIONAL_VIEW_TYPE;
}

/** A folder stands for the checkpoint file in it (the reader's own choice); a file stands for itself. */
function checkpointFile(uri: vscode.Uri): vscode.Uri {
  if (uri.scheme !== 'file') return uri;
  let isDir: boolean;
  try {
    isDir = statSync(uri.fsPath).isDirectory();
  } catch {
    return uri; // the editor reports the missing file
  }
  return isDir ? vscode.Uri.file(pickInFolder(uri.fsPath, readdirSync(uri.fsPath))) : uri;
}

async function pickCheckpoint(
  title = 'Quant Lens: choose a checkpoint',
  openLabel = 'Inspect',
  near?: vscode.Uri,
): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel,
    title,
    filters: { Checkpoints: CHECKPOINT_EXTENSIONS },
    ...(near ? { defaultUri: near } : {}),
  });
  return picked?.[0];
}

/** The second checkpoint of a comparison, from a file dialog that starts beside the first. */
async function pickSecondCheckpoint(first: vscode.Uri): Promise<vscode.Uri | undefined> {
  const name = first.path.split('/').pop() ?? first.fsPath;
  const second = await pickCheckpoint(`Quant Lens: compare ${name} with…`, 'Compare', vscode.Uri.joinPath(first, '..'));
  return second && checkpointFile(second);
}

/**
 * No telemetry from onnxruntime (engine/ort.ts), before any worker starts; and no temporary file
 * left when the window closes during an export or a calibration: the workers' temporary files are
 * known here (worker/pool.ts) and removed on deactivation and when the host exits.
 */
function guardProcess(context: vscode.ExtensionContext): void {
  disableOrtTelemetry();
  const onExit = () => removeTemporaryOutputs();
  process.on('exit', onExit);
  context.subscriptions.push({
    dispose: () => {
      removeTemporaryOutputs();
      process.off('exit', onExit);
    },
  });
}

export function activate(context: vscode.ExtensionContext): void {
  guardProcess(context);
  const log = vscode.window.createOutputChannel('Quant Lens', { log: true });
  const reporter = new Reporter(log);
  const engine = new EngineService(context.extensionUri, log);
  const calibration = new CalibrationService(engine);
  const jobs = new JobTracker(log);
  const services: Services = { engine, jobs, calibration };
  const sessions = new SessionRegistry(engine, calibration, context.workspaceState);

  // Analyses persist in a result store (docs/result-store.md): the extension's own by default.
  const ownStore = join(context.globalStorageUri.fsPath, 'result-store');
  const applyStore = async () => {
    const dir = resultStorePath(ownStore);
    const why = await engine.useStore(dir, dir !== null && dir !== ownStore);
    if (why) {
      void vscode.window.showWarningMessage(`Quant Lens: the result store is not used: ${why}`);
      return;
    }
    const open = sessions.all.filter((s) => s.summary);
    if (!dir || open.length === 0) return;
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Quant Lens: reading ${dir}`, cancellable: true },
      async (progress, token) => {
        const controller = new AbortController();
        token.onCancellationRequested(() => controller.abort());
        let found = 0;
        for (const s of open) {
          found += await s.loadFromStore({
            signal: controller.signal,
            onProgress: (done, total) => progress.report({ message: `${s.name}: ${done} / ${total} layers` }),
          });
        }
        log.info(`${found} analysed layers from the result store ${dir}`);
      },
    );
  };
  void engine.useStore(resultStorePath(ownStore), resultStorePath(ownStore) !== ownStore);
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('quantLens.resultStore'))
        void applyStore().catch((err: unknown) => reporter.fail('Open Result Store', err));
    }),
  );

  const openOverview = async (uri: vscode.Uri) => {
    const file = checkpointFile(uri);
    await vscode.commands.executeCommand('vscode.openWith', file, overviewViewType(file.fsPath));
  };

  const panels = new LayerPanels(context.extensionUri, sessions, services, reporter, {
    openOverview: (session) => openOverview(session.uri),
  });
  const comparisons = new ComparisonPanels(context.extensionUri, services, reporter, { openOverview });
  const tree = new LayersTreeProvider(sessions);
  const treeView = vscode.window.createTreeView(LAYERS_VIEW_ID, { treeDataProvider: tree, showCollapseAll: true });
  tree.attach(treeView);

  const editorProvider = new OverviewEditorProvider(context.extensionUri, sessions, services, reporter, {
    openLayer: (session, layer) => panels.show(session, layer, vscode.ViewColumn.Beside),
    setCalibration: () => setCalibration(engine, calibration, jobs),
  });

  /** The checkpoint palette commands act on; says so when there is none. */
  const activeSession = (): CheckpointSession | undefined => {
    const s = panels.active?.session ?? sessions.active;
    if (!s) {
      void vscode.window
        .showInformationMessage('Quant Lens: open a checkpoint first.', 'Inspect Checkpoint')
        .then((c) => (c ? vscode.commands.executeCommand('quantLens.inspectCheckpoint') : undefined))
        .then(undefined, (e: unknown) => reporter.fail('Inspect Checkpoint', e));
    }
    return s;
  };

  // Typed by COMMANDS: a contributed command without a handler, or a handler for an unknown id, fails to compile.
  const handlers: Record<CommandId, (...args: never[]) => unknown> = {
    'quantLens.inspectCheckpoint': async (uri?: vscode.Uri) => {
      const target = uri instanceof vscode.Uri ? uri : await pickCheckpoint();
      if (target) await openOverview(target);
    },
    'quantLens.compareCheckpoints': async (uri?: vscode.Uri, uris?: vscode.Uri[]) => {
      // From the explorer with several files selected: those files; from the palette: two dialogs.
      const selected = (Array.isArray(uris) ? uris : []).filter((u) => u instanceof vscode.Uri);
      if (selected.length > 2) {
        void vscode.window.showWarningMessage(`Quant Lens: select two checkpoints to compare, not ${selected.length}.`);
        return;
      }
      if (selected.length === 2) {
        comparisons.show(checkpointFile(selected[0]!), checkpointFile(selected[1]!));
        return;
      }
      const first =
        uri instanceof vscode.Uri
          ? uri
          : await pickCheckpoint('Quant Lens: choose the first checkpoint (W₁)', 'Choose');
      if (!first) return;
      const a = checkpointFile(first);
      const b = await pickSecondCheckpoint(a);
      if (b) comparisons.show(a, b);
    },
    'quantLens.compareWith': async (uri?: vscode.Uri) => {
      if (!(uri instanceof vscode.Uri)) return vscode.commands.executeCommand('quantLens.compareCheckpoints');
      const a = checkpointFile(uri);
      const b = await pickSecondCheckpoint(a);
      if (b) comparisons.show(a, b);
    },
    'quantLens.inspectLayer': async () => {
      const session = activeSession();
      if (!session) return;
      await session.ready;
      const layer = await pickLayer(session);
      if (layer) panels.show(session, layer);
    },
    'quantLens.openLayer': (checkpoint?: string, layer?: string) => {
      const session = typeof checkpoint === 'string' ? sessions.get(checkpoint) : sessions.active;
      if (session && typeof layer === 'string') panels.show(session, layer);
    },
    'quantLens.analyzeAll': async () => {
      const session = activeSession();
      if (session) await analyzeAll(session, services);
    },
    'quantLens.compareMethods': async () => {
      const panel = panels.active;
      if (panel) return panel.compareMethods();
      const session = activeSession();
      if (session) await compareCheckpointMethods(session, services);
    },
    'quantLens.setCalibration': () => setCalibration(engine, calibration, jobs),
    'quantLens.exportCheckpoint': async () => {
      const session = activeSession();
      if (session) await exportQuantizedCheckpoint(session, services);
    },
    'quantLens.exportReport': async () => {
      const session = activeSession();
      if (session) await exportReport(session, services);
    },
    'quantLens.cancelAnalysis': () => {
      const n = jobs.cancelAll();
      log.info(n ? `cancelled ${n} running job(s)` : 'nothing to cancel');
    },
    'quantLens.sortLayersByError': () => tree.setSort('error'),
    'quantLens.sortLayersByStructure': () => tree.setSort('structure'),
    'quantLens.openResultStore': async (uri?: vscode.Uri) => {
      const picked =
        uri instanceof vscode.Uri
          ? uri
          : (
              await vscode.window.showOpenDialog({
                canSelectFiles: false,
                canSelectFolders: true,
                canSelectMany: false,
                openLabel: 'Open Store',
                title: 'Quant Lens: open a result store (a folder quant-lens inspect --store filled)',
              })
            )?.[0];
      if (!picked) return;
      try {
        await ResultStore.open(picked.fsPath, { create: false });
      } catch (e) {
        void vscode.window.showErrorMessage(`Quant Lens: ${errorMessage(e)}`);
        return;
      }
      // The setting's change reads the store into every open checkpoint; the same folder again reads it now.
      if (resultStorePath(ownStore) === picked.fsPath) await applyStore();
      else await setResultStorePath(picked.fsPath);
    },
    'quantLens.showLog': () => log.show(),
  };

  context.subscriptions.push(
    log,
    engine,
    calibration,
    jobs,
    sessions,
    panels,
    comparisons,
    tree,
    treeView,
    new CheckpointFolderIndex(log),
    ...OverviewEditorProvider.register(editorProvider),
    panels.register(),
    comparisons.register(),
    ...Object.entries(handlers).map(([id, fn]) =>
      vscode.commands.registerCommand(
        id,
        reporter.guard(COMMANDS[id as CommandId].replace(/…$/, ''), fn as (...args: unknown[]) => unknown),
      ),
    ),
  );
  void vscode.commands.executeCommand('setContext', 'quantLens.analysisRunning', false);
}

export function deactivate(): void {}
