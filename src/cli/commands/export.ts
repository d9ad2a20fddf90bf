/** `quant-lens export <checkpoint> --out <file.safetensors>`: writes the quantized checkpoint. */
import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { QuantLensError } from '../../engine/errors';
import { openCheckpoint } from '../../engine/readers/open';
import { StatsFile } from '../../engine/calibration/statsFile';
import { exportQuantizedCheckpoint, type ExportDType } from '../../engine/export/exportCheckpoint';
import { parseRecipe, type Recipe } from '../../engine/methods/recipe';
import { parse, requirePositional } from '../args';
import { analysisOptionSpec, analysisOptionsHelp, resolveSettings, selectLayers } from '../analysisOptions';
import { ProgressBar } from '../progress';

export const exportHelp = `quant-lens export <checkpoint> --out <file.safetensors> [options]
  Writes the quantized checkpoint: W_q in place of each processed weight N, plus N.lqer_A and
  N.lqer_B, with the settings in __metadata__; other tensors are copied unchanged.
${analysisOptionsHelp}
  --out <file>            the .safetensors file to write (required)
  --dtype <t>             f32 (default), bf16 or f16 for W_q, A and B (all exact for MXINT values)
  --recipe <file.json>    per-layer format and rank (from the rank-allocation view), overriding --format/--rank`;

export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...analysisOptionSpec,
    out: { type: 'string' },
    dtype: { type: 'string' },
    recipe: { type: 'string' },
  });
  const path = requirePositional(positionals, 0, 'checkpoint path');
  if (!values.out) throw new QuantLensError('bad-argument', '--out <file.safetensors> is required');
  const dtype = (values.dtype ?? 'f32').toUpperCase() as ExportDType;
  if (!['F32', 'BF16', 'F16'].includes(dtype))
    throw new QuantLensError('bad-argument', '--dtype must be f32, bf16 or f16');
  const { settings, rank } = resolveSettings(values);
  let recipe: Recipe | null = null;
  if (values.recipe) {
    const file = values.recipe;
    const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new QuantLensError('not-found', `cannot read: ${e.code ?? e.message}`, file);
    });
    recipe = parseRecipe(text, file);
  }
  const ckpt = await openCheckpoint(resolve(path));
  const stats = values.calib ? await StatsFile.open(resolve(values.calib)) : null;
  try {
    const layers = recipe ? [] : selectLayers(ckpt.linearLayers, values.layer, values.all);
    const bar = new ProgressBar(recipe ? Object.keys(recipe.layers).length : layers.length);
    const result = await exportQuantizedCheckpoint({
      checkpoint: ckpt,
      layers,
      settings,
      rank,
      recipe,
      stats,
      dtype,
      out: values.out,
      onLayer: (done, _total, layer) => bar.update(done, layer),
    });
    bar.done();
    process.stderr.write(
      `wrote ${result.path}: ${Object.keys(result.layers).length} quantized layers, ${result.tensors} tensors\n`,
    );
    return 0;
  } finally {
    await stats?.close();
    await ckpt.close();
  }
}
