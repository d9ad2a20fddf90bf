/**
 * The "Layers" view in the Quant Lens activity-bar container: the active checkpoint's blocks and
 * their linear layers, each with its shape and, once analysed, its error at the checkpoint's
 * current settings and an icon coloured by how bad that error is among the analysed layers.
 */
import * as vscode from 'vscode';
import type { LinearLayer } from '../../shared/checkpointSummary';
import { errorBin, errorDomain, headlineError, type ErrorDomain } from '../../shared/errorScale';
import { formatBits, formatDb, formatPercent, shortLayerName } from '../../shared/formatting';
import { describeSettings } from '../../shared/quantSettings';
import type { LayerResultRow } from '../../shared/protocol/overview';
import type { CheckpointSession } from '../services/checkpointSession';
import { groupByBlock, shapeLabel, sortByError, type LayerGroup } from './layerGroups';
import type { SessionRegistry } from '../services/sessionRegistry';

export const LAYERS_VIEW_ID = 'quantLens.layers';
export type LayerSort = 'structure' | 'error';

type Node =
  | { kind: 'group'; group: LayerGroup }
  | { kind: 'layer'; layer: LinearLayer; flat: boolean }
  | { kind: 'message'; text: string };

/** Best → worst; the theme's chart colours follow the user's theme. */
const BIN_COLOURS = ['charts.green', 'charts.yellow', 'charts.orange', 'charts.red'] as const;

export class LayersTreeProvider implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private sort: LayerSort = 'structure';
  private view: vscode.TreeView<Node> | undefined;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private session: CheckpointSession | undefined;
  private sessionSub: vscode.Disposable | undefined;
  private rows = new Map<string, LayerResultRow>();
  private domain: ErrorDomain | null = null;

  constructor(private readonly sessions: SessionRegistry) {
    this.disposables.push(sessions.onDidChangeActive((s) => this.follow(s)));
    void vscode.commands.executeCommand('setContext', 'quantLens.layersSort', this.sort);
  }

  attach(view: vscode.TreeView<Node>): void {
    this.view = view;
    this.follow(this.sessions.active);
  }

  setSort(sort: LayerSort): void {
    this.sort = sort;
    void vscode.commands.executeCommand('setContext', 'quantLens.layersSort', sort);
    this.changed.fire(undefined);
  }

  private follow(session: CheckpointSession | undefined): void {
    if (session !== this.session) {
      this.sessionSub?.dispose();
      this.session = session;
      this.sessionSub = session?.onDidChange((what) => {
        if (what === 'results' || what === 'settings' || what === 'summary') this.refresh();
      });
    }
    this.refresh();
  }

  private refresh(): void {
    const s = this.session;
    this.rows = new Map((s?.rows() ?? []).map((r) => [r.name, r]));
    this.domain = errorDomain([...this.rows.values()].map(headlineError));
    if (this.view) {
      this.view.description = s ? s.name : undefined;
      this.view.message = s?.summary
        ? `${describeSettings(s.settings)} · ${this.rows.size} / ${s.linearLayers.length} analysed`
        : undefined;
    }
    this.changed.fire(undefined);
  }

  getChildren(node?: Node): Node[] {
    const s = this.session;
    if (!s) return [];
    if (!node) {
      if (s.error) return [{ kind: 'message', text: `Cannot open ${s.name}: ${s.error.message}` }];
      if (!s.summary) return [{ kind: 'message', text: `Reading ${s.name}…` }];
      if (s.linearLayers.length === 0) return [{ kind: 'message', text: 'No linear layers found in this checkpoint.' }];
      if (this.sort === 'error') {
        return sortByError(s.linearLayers, (name) => headlineError(this.rows.get(name))).map((layer) => ({
          kind: 'layer',
          layer,
          flat: true,
        }));
      }
      const groups = groupByBlock(s.linearLayers);
      if (groups.length === 1) return groups[0]!.layers.map((layer) => ({ kind: 'layer', layer, flat: true }));
      return groups.map((group) => ({ kind: 'group', group }));
    }
    if (node.kind === 'group') return node.group.layers.map((layer) => ({ kind: 'layer', layer, flat: false }));
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'message') {
      const item = new vscode.TreeItem(node.text, vscode.TreeItemCollapsibleState.None);
      item.iconPath = new vscode.ThemeIcon('info');
      return item;
    }
    if (node.kind === 'group') {
      const g = node.group;
      const item = new vscode.TreeItem(g.label, vscode.TreeItemCollapsibleState.Collapsed);
      const analysed = g.layers.filter((l) => this.rows.has(l.name)).length;
      item.description = `${g.layers.length} layers${analysed ? ` · ${analysed} analysed` : ''}`;
      item.id = `group:${g.block ?? 'other'}`;
      item.contextValue = 'block';
      item.iconPath = new vscode.ThemeIcon('symbol-namespace');
      return item;
    }
    return this.layerItem(node.layer, node.flat);
  }

  private layerItem(layer: LinearLayer, flat: boolean): vscode.TreeItem {
    const name = shortLayerName(layer.name);
    const label = flat || layer.block === null ? name : name.replace(new RegExp(`^.*?\\b${layer.block}\\.`), '');
    const item = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.None);
    item.id = `layer:${layer.name}`;
    const row = this.rows.get(layer.name);
    const failure = this.session?.failure(layer.name);
    const error = headlineError(row);
    const shape = shapeLabel(layer);
    if (row && error !== null) {
      item.description = `${shape} · ${formatPercent(error)}`;
      const bin = this.domain ? errorBin(error, this.domain) : 0;
      item.iconPath = new vscode.ThemeIcon('circle-filled', new vscode.ThemeColor(BIN_COLOURS[bin]!));
    } else if (failure) {
      item.description = `${shape} · failed`;
      item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground'));
    } else {
      item.description = shape;
      item.iconPath = new vscode.ThemeIcon('circle-outline');
    }
    const tip = new vscode.MarkdownString(undefined, true);
    tip.appendMarkdown(`**${layer.name}**\n\n`);
    tip.appendMarkdown(
      `[out × in] ${shape} · ${layer.dtype} · ${layer.role}${layer.quantizedByDefault ? '' : ' · not quantized by default'}\n\n`,
    );
    if (row) {
      tip.appendMarkdown(
        `weight error ${formatPercent(row.weightError)} (RTN ${formatPercent(row.weightErrorRtn)}) · output error ${formatPercent(row.outputError)} · SQNR ${formatDb(row.weightSqnrDb)} · ${formatBits(row.bitsPerWeight)} bits/weight`,
      );
    } else if (failure) tip.appendMarkdown(`analysis failed: ${failure.message}`);
    else tip.appendMarkdown('not analysed at the current settings');
    item.tooltip = tip;
    item.contextValue = 'layer';
    item.command = {
      command: 'quantLens.openLayer',
      title: 'Inspect Layer',
      arguments: [this.session?.path, layer.name],
    };
    item.accessibilityInformation = {
      label: `${layer.name}, ${shape}${row && error !== null ? `, error ${formatPercent(error)}` : ''}`,
    };
    return item;
  }

  dispose(): void {
    this.sessionSub?.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
