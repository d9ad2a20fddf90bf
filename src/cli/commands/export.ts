/** `quant-lens export <checkpoint> --to <target> --out <path>`: the quantized model for a runtime. */
import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { QuantLensError } from '../../engine/errors';
import { openCheckpoint } from '../../engine/readers/open';
import { StatsFile } from '../../engine/calibration/statsFile';
import { EXPORT_TARGETS, EXPORT_TARGET_IDS, exportTarget, runExport } from '../../engine/export/targets';
import type { ExportDType } from '../../engine/export/target';
import { METHODS, isMethodName } from '../../engine/methods/methods';
import { parseRecipe, type Recipe } from '../../engine/methods/recipe';
import { formatToString, parseFormat } from '../../engine/quantizers';
import { parse, requirePositional } from '../args';
import {
  analysisOptionSpec,
  analysisOptionsHelp,
  cappedRankLayers,
  cappedRankNote,
  resolveSettings,
  selectLayers,
} from '../analysisOptions';
import { ProgressBar } from '../progress';

const targetLines = EXPORT_TARGET_IDS.map((id) => {
  const t = EXPORT_TARGETS[id];
  return `                          ${id.padEnd(15)} ${t.output === 'folder' ? '(folder) ' : ''}${t.description}`;
}).join('\n');

export const exportHelp = `quant-lens export <checkpoint> --out <path> [--to <target>] [options]
  Writes the quantized model (or the recipe) for a runtime to load.
${analysisOptionsHelp}
  --to <target>           what to write (default quant-lens):
${targetLines}
  --out <path>            the file or folder to write (required)
  --force                 replace an existing output
  --dtype <t>             storage of W_q and the factors where the target writes tensors: f32, bf16, f16
                          (quant-lens: f32 by default; hf: by default each tensor in the narrowest of
                          bf16, f16, f32 that holds it exactly)
  --shard-size <size>     hf: largest shard (default 5GB; e.g. 500MB, 2GiB)
  --recipe <file.json>    per-layer format and rank (from \`quant-lens allocate\` or the allocation view),
                          overriding --format/--rank; its method and A/B format apply unless given here`;

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** "5GB", "500MB", "2GiB", "1048576" → bytes. */
export function parseByteSize(text: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(text);
  const unit = SIZE_UNITS[(m?.[2] ?? 'b').toLowerCase()];
  const bytes = m && unit ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new QuantLensError('bad-argument', `${option} must be a size such as 5GB, 500MB or 2GiB; got "${text}"`);
  }
  return bytes;
}

async function readRecipe(file: string): Promise<Recipe> {
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new QuantLensError('not-found', `cannot read: ${e.code ?? e.message}`, file);
  });
  return parseRecipe(text, file);
}

export async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...analysisOptionSpec,
      to: { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean' },
      dtype: { type: 'string' },
      'shard-size': { type: 'string' },
      recipe: { type: 'string' },
    },
    ['<checkpoint>'],
  );
  const path = requirePositional(positionals, 0, 'checkpoint path');
  const target = exportTarget(values.to ?? 'quant-lens');
  if (!values.out) {
    throw new QuantLensError(
      'bad-argument',
      `--out <${target.output === 'folder' ? 'folder' : `file.${target.extension ?? ''}`}> is required`,
    );
  }
  let dtype: ExportDType | null = null;
  if (values.dtype !== undefined) {
    const d = values.dtype.toUpperCase();
    if (d !== 'F32' && d !== 'BF16' && d !== 'F16')
      throw new QuantLensError('bad-argument', '--dtype must be f32, bf16 or f16');
    dtype = d;
  }
  const recipe = values.recipe ? await readRecipe(values.recipe) : null;
  if (recipe?.method !== undefined && !isMethodName(recipe.method)) {
    throw new QuantLensError(
      'bad-argument',
      `the recipe's method "${recipe.method}" is not a method Quant Lens knows`,
      values.recipe,
    );
  }
  // A recipe carries the method and A/B format its curves were computed with; flags still win.
  const { settings, rank } = resolveSettings({
    ...values,
    ...(recipe?.method && values.method === undefined && isMethodName(recipe.method) ? { method: recipe.method } : {}),
    ...(recipe?.factorFormat && values['ab-format'] === undefined ? { 'ab-format': recipe.factorFormat } : {}),
  });
  if (recipe?.method && values.method !== undefined && values.method !== recipe.method) {
    process.stderr.write(`note: --method ${values.method} overrides the recipe's method ${recipe.method}\n`);
  }
  if (
    recipe?.factorFormat &&
    values['ab-format'] !== undefined &&
    formatToString(parseFormat(values['ab-format'])) !== formatToString(parseFormat(recipe.factorFormat))
  ) {
    process.stderr.write(`note: --ab-format ${values['ab-format']} overrides the recipe's ${recipe.factorFormat}\n`);
  }
  const ckpt = await openCheckpoint(resolve(path));
  // A statistics file that fails to open must not leave the checkpoint open.
  const stats = values.calib
    ? await StatsFile.open(resolve(values.calib)).catch(async (e: unknown) => {
        await ckpt.close();
        throw e;
      })
    : null;
  try {
    const layers = recipe ? [] : selectLayers(ckpt.linearLayers, values.layer, values.all);
    const note =
      !recipe && values.rank !== undefined && METHODS[settings.method].corrects
        ? cappedRankNote(cappedRankLayers(layers, rank), rank)
        : null;
    if (note) process.stderr.write(`note: ${note}\n`);
    const bar = new ProgressBar(recipe ? Object.keys(recipe.layers).length : layers.length);
    const result = await runExport(
      target.id,
      {
        checkpoint: ckpt,
        layers,
        settings,
        rank,
        recipe,
        ...(values.recipe ? { recipeFile: values.recipe } : {}),
        stats,
      },
      {
        out: values.out,
        force: !!values.force,
        dtype,
        ...(values['shard-size'] ? { shardBytes: parseByteSize(values['shard-size'], '--shard-size') } : {}),
        inputs: [
          ...(values.calib ? [{ path: values.calib, what: 'the calibration file' }] : []),
          ...(values.recipe ? [{ path: values.recipe, what: 'the recipe' }] : []),
        ],
        outOption: '--out',
        onLayer: (done, _total, layer) => bar.update(done, layer),
      },
    );
    bar.done();
    for (const note of result.notes) process.stderr.write(`note: ${note}\n`);
    const count = Object.keys(result.layers).length;
    process.stderr.write(
      `wrote ${result.path}: ${count} layer${count === 1 ? '' : 's'}${result.tensors !== undefined ? `, ${result.tensors} tensors` : ''}${result.files.length > 1 ? ` in ${result.files.length} files` : ''}\n`,
    );
    return 0;
  } finally {
    await stats?.close();
    await ckpt.close();
  }
}
