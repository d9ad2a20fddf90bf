/**
 * The view types of the webview panels that come back after a window reload. VS Code wakes the
 * extension for them only through `onWebviewPanel:<viewType>` activation events, so package.json
 * must name each one: panels are typed by this list, and the manifest test compares the two.
 */
import { COMPARISON_VIEW_TYPE } from './comparison';
import { LAYER_VIEW_TYPE } from './layer';

export const REVIVABLE_PANEL_VIEW_TYPES = [LAYER_VIEW_TYPE, COMPARISON_VIEW_TYPE] as const;
export type RevivablePanelViewType = (typeof REVIVABLE_PANEL_VIEW_TYPES)[number];
