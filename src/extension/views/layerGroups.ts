/** How the Layers tree groups and orders a checkpoint's linear layers. Free of the VS Code API. */
import type { LinearLayer } from '../../shared/checkpointSummary';

export interface LayerGroup {
  /** The transformer block, or null for layers outside the blocks (embeddings, head, …). */
  block: number | null;
  label: string;
  layers: LinearLayer[];
}

/** Blocks in ascending order, then one group for everything outside the blocks; file order within. */
export function groupByBlock(layers: readonly LinearLayer[]): LayerGroup[] {
  const byBlock = new Map<number, LinearLayer[]>();
  const other: LinearLayer[] = [];
  for (const l of layers) {
    if (l.block === null) other.push(l);
    else {
      const list = byBlock.get(l.block) ?? [];
      list.push(l);
      byBlock.set(l.block, list);
    }
  }
  const groups: LayerGroup[] = [...byBlock.entries()]
    .sort(([a], [b]) => a - b)
    .map(([block, list]) => ({ block, label: `Block ${block}`, layers: list }));
  if (other.length) groups.push({ block: null, label: groups.length ? 'Other layers' : 'Layers', layers: other });
  return groups;
}

/**
 * Largest error first; layers without a result keep their file order after the analysed ones
 * (a stable sort, so equal errors keep file order too).
 */
export function sortByError(
  layers: readonly LinearLayer[],
  errorOf: (name: string) => number | null | undefined,
): LinearLayer[] {
  const keyed = layers.map((layer, index) => {
    const e = errorOf(layer.name);
    return { layer, index, error: e === null || e === undefined || !Number.isFinite(e) ? null : e };
  });
  keyed.sort((a, b) => {
    if (a.error === null && b.error === null) return a.index - b.index;
    if (a.error === null) return 1;
    if (b.error === null) return -1;
    return b.error - a.error || a.index - b.index;
  });
  return keyed.map((k) => k.layer);
}

/** The layers an "analyse all" covers: those the papers quantize, or all when none is marked. */
export function layersToAnalyse(layers: readonly LinearLayer[]): LinearLayer[] {
  const marked = layers.filter((l) => l.quantizedByDefault);
  return marked.length ? marked : [...layers];
}

/** "q_proj · 4096×4096" */
export function shapeLabel(layer: Pick<LinearLayer, 'shape'>): string {
  return `${layer.shape[0]}×${layer.shape[1]}`;
}
