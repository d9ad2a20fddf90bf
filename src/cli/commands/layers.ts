/** `quant-lens layers <checkpoint>`: the linear layers with [out, in] shapes, dtype and source file. */
import { relative } from 'node:path';
import { openCheckpoint } from '../../engine/readers/open';
import { parse, requirePositional } from '../args';
import { formatTable } from '../table';

export const layersHelp = `quant-lens layers <checkpoint> [--json] [--all]
  Lists the linear layers of a checkpoint in [out, in] orientation.
  --json   one JSON object per layer (JSON Lines)
  --all    include layers not quantized by default (embeddings, lm_head, …)`;

export async function layersCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, all: { type: 'boolean' } });
  const path = requirePositional(positionals, 0, 'checkpoint path');
  const ckpt = await openCheckpoint(path);
  try {
    const layers = ckpt.linearLayers.filter((l) => values.all || l.quantizedByDefault);
    if (values.json) {
      for (const l of layers) out.write(JSON.stringify(l) + '\n');
      return 0;
    }
    out.write(
      `${ckpt.format} checkpoint ${path}: architecture ${ckpt.architecture ?? 'unknown'}, ${ckpt.linearLayers.length} linear layers\n`,
    );
    const rows = layers.map((l) => [
      l.name,
      `${l.shape[0]}×${l.shape[1]}`,
      l.dtype,
      l.block === null ? '' : String(l.block),
      l.role,
      l.quantizedByDefault ? 'yes' : 'no',
      relative(process.cwd(), l.file) || l.file,
    ]);
    out.write(formatTable(['layer', '[out×in]', 'dtype', 'block', 'role', 'quantized', 'file'], rows) + '\n');
    return 0;
  } finally {
    await ckpt.close();
  }
}
