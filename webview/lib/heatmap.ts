/**
 * The overview's heatmap, as data: transformer blocks × layer roles, each cell the layers of that
 * role in that block (one, or several experts), valued by the worst error among them. Pure.
 */

export interface HeatmapLayer {
  name: string;
  block: number | null;
  role: string;
}

export interface HeatmapGrid {
  /** Column labels: block indices, ascending. */
  blocks: number[];
  /** Row labels: roles in the order the checkpoint first uses them. */
  roles: string[];
  /** cells[row][col]: the layer names in that cell. */
  cells: string[][][];
}

/** The grid for the layers that belong to a block; null when none does. */
export function heatmapGrid(layers: readonly HeatmapLayer[]): HeatmapGrid | null {
  const inBlocks = layers.filter((l): l is HeatmapLayer & { block: number } => l.block !== null);
  if (inBlocks.length === 0) return null;
  const blocks = [...new Set(inBlocks.map((l) => l.block))].sort((a, b) => a - b);
  const roles: string[] = [];
  for (const l of inBlocks) if (!roles.includes(l.role)) roles.push(l.role);
  const col = new Map(blocks.map((b, i) => [b, i]));
  const row = new Map(roles.map((r, i) => [r, i]));
  const cells = roles.map(() => blocks.map((): string[] => []));
  for (const l of inBlocks) cells[row.get(l.role)!]![col.get(l.block)!]!.push(l.name);
  return { blocks, roles, cells };
}

/** The value of each cell (row-major): the largest of its layers' values, NaN when none has one. */
export function heatmapValues(grid: HeatmapGrid, valueOf: (name: string) => number | null | undefined): Float64Array {
  const out = new Float64Array(grid.roles.length * grid.blocks.length).fill(NaN);
  grid.cells.forEach((r, i) =>
    r.forEach((names, j) => {
      for (const n of names) {
        const v = valueOf(n);
        if (v === null || v === undefined || !Number.isFinite(v)) continue;
        const k = i * grid.blocks.length + j;
        if (Number.isNaN(out[k]!) || v > out[k]!) out[k] = v;
      }
    }),
  );
  return out;
}

/** Which cell a point falls in, for clicks and hover; null outside the grid. */
export function cellAt(
  x: number,
  y: number,
  layout: { left: number; top: number; cellWidth: number; cellHeight: number; rows: number; cols: number },
): { row: number; col: number } | null {
  const col = Math.floor((x - layout.left) / layout.cellWidth);
  const row = Math.floor((y - layout.top) / layout.cellHeight);
  if (col < 0 || row < 0 || col >= layout.cols || row >= layout.rows) return null;
  return { row, col };
}
