/**
 * The layer panel's saved state: written by the webview with setState, read back by the host's
 * WebviewPanelSerializer after a reload. It comes from disk and from older versions of the
 * extension, so it is parsed, never trusted.
 */
import type { LayerPanelState } from './webviewProtocol';
import { DEFAULT_SETTINGS, sanitizeSettings, type QuantSettings } from './quantSettings';
import { sanitizeReassemblyOptions } from './reassemblyOptions';

export const LAYER_PANEL_STATE_VERSION = 1;

const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/**
 * Parses a saved state. Version 0 (the first preview) kept the settings flat beside the layer:
 * { checkpoint, layer, method, weightFormat, blockSize, factorFormat, rank }.
 * Returns null when the state does not say which checkpoint and layer the panel showed.
 */
export function parseLayerPanelState(
  value: unknown,
  fallback: QuantSettings = DEFAULT_SETTINGS,
): LayerPanelState | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!isNonEmptyString(v.checkpoint) || !isNonEmptyString(v.layer)) return null;
  const version = v.version === undefined ? 0 : v.version;
  if (typeof version !== 'number' || version > LAYER_PANEL_STATE_VERSION) return null;
  const settings = version === 0 ? sanitizeSettings(v, fallback) : sanitizeSettings(v.settings, fallback);
  return {
    version: 1,
    checkpoint: v.checkpoint,
    layer: v.layer,
    settings,
    raw: v.raw === true,
    ...(v.reassembly !== undefined ? { reassembly: sanitizeReassemblyOptions(v.reassembly) } : {}),
  };
}
