/** The extension's settings (`quantLens.*`), read and checked in one place. */
import * as vscode from 'vscode';
import { isAbsolute, join } from 'node:path';
import { isMethodName } from '../engine/methods/methods';
import { DEFAULT_SETTINGS, sanitizeSettings, type MethodPreference, type QuantSettings } from '../shared/quantSettings';

export const SECTION = 'quantLens';

export interface Defaults {
  /** Method, formats and rank for a newly opened checkpoint; the method is resolved per calibration. */
  settings: QuantSettings;
  method: MethodPreference;
}

export function readDefaults(): Defaults {
  const c = vscode.workspace.getConfiguration(SECTION);
  const method = c.get<string>('method', 'auto');
  const settings = sanitizeSettings(
    {
      method: DEFAULT_SETTINGS.method,
      weightFormat: c.get<string>('weightFormat'),
      blockSize: c.get<number>('blockSize'),
      factorFormat: c.get<string>('factorFormat'),
      rank: c.get<number>('rank'),
    },
    DEFAULT_SETTINGS,
  );
  return { settings, method: isMethodName(method) ? method : 'auto' };
}

export function workerCount(): number {
  const n = vscode.workspace.getConfiguration(SECTION).get<number>('workers', 1);
  return Number.isInteger(n) && n >= 1 ? Math.min(16, n) : 1;
}

/** The calibration statistics file from the settings, as an absolute path (relative: to the first workspace folder). */
export function calibrationPath(): string | null {
  const raw = vscode.workspace.getConfiguration(SECTION).get<string>('calibration', '').trim();
  if (!raw) return null;
  if (isAbsolute(raw)) return raw;
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? join(folder.uri.fsPath, raw) : raw;
}

/** Stores the calibration source for this workspace (or for the user when no folder is open). */
export async function setCalibrationPath(path: string | null): Promise<void> {
  const target = vscode.workspace.workspaceFolders?.length
    ? vscode.ConfigurationTarget.Workspace
    : vscode.ConfigurationTarget.Global;
  await vscode.workspace.getConfiguration(SECTION).update('calibration', path ?? undefined, target);
}

/**
 * Where analyses are kept (docs/result-store.md): the folder in the settings (relative: to the
 * first workspace folder), the extension's own store (`ownStore`, in its global storage) when the
 * setting is empty, or null for "off".
 */
export function resultStorePath(ownStore: string): string | null {
  const raw = vscode.workspace.getConfiguration(SECTION).get<string>('resultStore', '').trim();
  if (!raw) return ownStore;
  if (raw.toLowerCase() === 'off') return null;
  if (isAbsolute(raw)) return raw;
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? join(folder.uri.fsPath, raw) : raw;
}

/** Makes a store folder this workspace's (or the user's, with no folder open). */
export async function setResultStorePath(path: string): Promise<void> {
  const target = vscode.workspace.workspaceFolders?.length
    ? vscode.ConfigurationTarget.Workspace
    : vscode.ConfigurationTarget.Global;
  await vscode.workspace.getConfiguration(SECTION).update('resultStore', path, target);
}
