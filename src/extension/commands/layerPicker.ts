/**
 * "Quant Lens: Inspect Layer…": a quick pick over the active checkpoint's layers with fuzzy search
 * (the query's letters in order, so "l1dp" finds layers.1.mlp.down_proj). The quick pick's own
 * filter only matches contiguous text, so the items are filtered and ranked here on every
 * keystroke and shown with alwaysShow.
 */
import * as vscode from 'vscode';
import { headlineError } from '../../shared/errorScale';
import { formatPercent, shortLayerName } from '../../shared/formatting';
import type { CheckpointSession } from '../services/checkpointSession';
import { fuzzyFilter } from './fuzzy';
import { shapeLabel } from '../views/layerGroups';

type Item = vscode.QuickPickItem & { layer: string };

export function pickLayer(session: CheckpointSession): Promise<string | undefined> {
  const all: Item[] = session.linearLayers.map((l) => {
    const error = headlineError(session.row(l.name));
    return {
      label: shortLayerName(l.name),
      description: `${shapeLabel(l)} · ${l.dtype}${error !== null ? ` · ${formatPercent(error)}` : ''}`,
      alwaysShow: true,
      layer: l.name,
    };
  });
  const qp = vscode.window.createQuickPick<Item>();
  qp.title = `Quant Lens: inspect a layer of ${session.name}`;
  qp.placeholder = 'Type to search the layers (fuzzy: "l1dp" finds layers.1.mlp.down_proj)';
  qp.matchOnDescription = false;
  qp.items = all;
  return new Promise((resolve) => {
    let picked: string | undefined;
    const subs = [
      qp.onDidChangeValue((v) => {
        qp.items = fuzzyFilter(all, v, (i) => i.label);
      }),
      qp.onDidAccept(() => {
        picked = qp.selectedItems[0]?.layer ?? qp.activeItems[0]?.layer;
        qp.hide();
      }),
      qp.onDidHide(() => {
        for (const s of subs) s.dispose();
        qp.dispose();
        resolve(picked);
      }),
    ];
    qp.show();
  });
}
