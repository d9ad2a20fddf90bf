/**
 * "Quant Lens: Set Calibration…": choose the workspace's calibration source — an existing
 * statistics file, or an ONNX model plus calibration data that the worker runs to write one.
 */
import * as vscode from 'vscode';
import { existsSync } from 'node:fs';
import { basename, dirname, extname, join, relative } from 'node:path';
import type { CalibrationService } from '../services/calibrationService';
import { setCalibrationPath } from '../configuration';
import type { EngineService } from '../services/engineService';
import type { JobTracker } from '../services/jobTracker';
import type { CalibrateResult } from '../../shared/workerProtocol';

interface Choice extends vscode.QuickPickItem {
  action: 'stats' | 'onnx' | 'clear';
}

/** Stored relative to the workspace folder when inside it, so the setting travels with the workspace. */
function settingValue(path: string): string {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!folder) return path;
  const rel = relative(folder, path);
  return rel && !rel.startsWith('..') && !rel.startsWith('/') ? rel : path;
}

async function pickFile(
  title: string,
  filters: Record<string, string[]>,
  folders = false,
): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({
    title,
    canSelectMany: false,
    canSelectFiles: !folders,
    canSelectFolders: folders,
    ...(folders ? {} : { filters }),
    openLabel: 'Select',
  });
  return picked?.[0];
}

export async function setCalibration(
  engine: EngineService,
  calibration: CalibrationService,
  jobs: JobTracker,
): Promise<void> {
  const current = calibration.path;
  const items: Choice[] = [
    {
      action: 'stats',
      label: '$(file) Statistics file…',
      detail: 'A .safetensors file of activation statistics (from `quant-lens calibrate` or a previous run)',
    },
    {
      action: 'onnx',
      label: '$(play) Calibrate an ONNX model…',
      detail: 'Run an ONNX model on calibration data (an image folder or a text file) and write the statistics',
    },
  ];
  if (current)
    items.push({ action: 'clear', label: '$(close) No calibration', detail: `Stop using ${basename(current)}` });
  const choice = await vscode.window.showQuickPick(items, {
    title: 'Quant Lens: calibration source',
    placeHolder: current ? `Now: ${current}` : 'No calibration: only RTN and LQER can run, without output error',
  });
  if (!choice) return;
  if (choice.action === 'clear') {
    await setCalibrationPath(null);
    return;
  }
  if (choice.action === 'stats') {
    const file = await pickFile('Quant Lens: choose a calibration statistics file', { Statistics: ['safetensors'] });
    if (!file) return;
    // Read it first, so a wrong file is refused with the reader's message instead of being stored.
    const info = await engine.pool.call('calibrationInfo', { path: file.fsPath });
    if (Object.keys(info.layers).length === 0) {
      throw new Error(`${basename(file.fsPath)} holds no activation statistics (no "<weight>.act_*" tensors)`);
    }
    await setCalibrationPath(settingValue(file.fsPath));
    return;
  }
  await calibrateOnnx(engine, jobs);
}

async function calibrateOnnx(engine: EngineService, jobs: JobTracker): Promise<void> {
  const model = await pickFile('Quant Lens: choose the ONNX model to calibrate', { ONNX: ['onnx'] });
  if (!model) return;
  const kind = await vscode.window.showQuickPick(
    [
      { label: '$(folder) Image folder…', detail: 'Images for an image model (e.g. an OCR recognizer)', folder: true },
      {
        label: '$(file-text) Text file…',
        detail: 'Text for a language model (tokenized with tokenizer.json)',
        folder: false,
      },
    ],
    { title: 'Quant Lens: calibration data' },
  );
  if (!kind) return;
  const data = await pickFile('Quant Lens: choose the calibration data', { Text: ['txt', 'jsonl', 'md'] }, kind.folder);
  if (!data) return;
  let tokenizer: string | undefined;
  if (!kind.folder) {
    const beside = join(dirname(model.fsPath), 'tokenizer.json');
    if (existsSync(beside)) tokenizer = beside;
    else tokenizer = (await pickFile('Quant Lens: choose the tokenizer.json', { Tokenizer: ['json'] }))?.fsPath;
    if (!tokenizer) return;
  }
  const out = await vscode.window.showSaveDialog({
    title: 'Quant Lens: save the calibration statistics',
    defaultUri: vscode.Uri.file(
      join(dirname(model.fsPath), `${basename(model.fsPath, extname(model.fsPath))}.stats.safetensors`),
    ),
    filters: { Statistics: ['safetensors'] },
  });
  if (!out) return;
  const controller = new AbortController();
  const tracked = jobs.track(controller);
  let result: CalibrateResult | undefined;
  try {
    result = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `Quant Lens: calibrating ${basename(model.fsPath)}`,
        cancellable: true,
      },
      async (progress, token) => {
        const sub = token.onCancellationRequested(() => controller.abort());
        let reported = 0;
        try {
          return await engine.pool.call(
            'calibrate',
            {
              model: model.fsPath,
              data: data.fsPath,
              out: out.fsPath,
              // The save dialog asked before choosing an existing file; inputs are still refused.
              force: true,
              ...(tokenizer ? { tokenizer } : {}),
            },
            {
              signal: controller.signal,
              onProgress: (p) => {
                const pct = p.batches ? (100 * p.batchesDone) / p.batches : 0;
                progress.report({
                  message: `${p.batchesDone} / ${p.batches} batches · ${p.samplesDone} samples`,
                  increment: pct - reported,
                });
                reported = pct;
              },
            },
          );
        } finally {
          sub.dispose();
        }
      },
    );
  } catch (e) {
    if (controller.signal.aborted) {
      engine.log.info(`calibration of ${model.fsPath} cancelled`);
      return;
    }
    throw e;
  } finally {
    tracked.dispose();
  }
  if (!result) return;
  engine.log.info(
    `calibrated ${model.fsPath}: ${result.layers} layers, ${result.samples} samples in ${result.seconds.toFixed(1)} s → ${result.out}`,
  );
  await setCalibrationPath(settingValue(result.out));
}
