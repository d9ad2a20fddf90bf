/**
 * `quant-lens compare <a> <b>`: per linear layer, W_b − W_a read as if it were a quantization
 * error: its size relative to W_a, its spectrum, and whether the layer changed.
 */
import { resolve } from 'node:path';
import { QuantLensError } from '../../engine/errors';
import {
  DEFAULT_CHANGE_TOLERANCE,
  compareCheckpoints,
  type CheckpointComparison,
  type LayerDifference,
} from '../../engine/methods/compareCheckpoints';
import { openCheckpoint } from '../../engine/readers/open';
import { parse, requirePositional } from '../args';
import { BOUNDS, numberOption } from '../numbers';
import { ProgressBar } from '../progress';
import { formatTable } from '../table';

export const compareHelp = `quant-lens compare <checkpoint A> <checkpoint B> [options]
  Pairs the linear layers of two checkpoints of one architecture (by name, else by block and role,
  so a Hugging Face checkpoint pairs with its GGUF conversion; llama.cpp's q/k row permutation is
  undone) and shows ΔW = W_B − W_A per layer as if it were a quantization error: ‖ΔW‖/‖W_A‖, the
  largest |ΔW|, its spectrum (σ₁, the rank holding 90 % of ‖ΔW‖²) and a changed / unchanged verdict.
  --tolerance <t>     relative difference up to which a layer counts as unchanged (default ${DEFAULT_CHANGE_TOLERANCE})
  --no-spectra        skip the spectra (O(n³) per layer)
  --layer <name>      only these layers of A (repeatable)
  --changed-only      list only the layers that changed
  --json              the whole comparison as JSON (spectra included)`;

function row(d: LayerDifference): string[] {
  return [
    d.name === d.nameB ? d.name : `${d.name} ↔ ${d.nameB}`,
    `${d.shape[0]}×${d.shape[1]}`,
    Number.isFinite(d.relative) ? `${(100 * d.relative).toPrecision(3)}%` : '∞',
    d.maxAbs.toExponential(2),
    d.sigma.length ? d.sigma[0]!.toExponential(2) : '—',
    d.rank90 === null ? '—' : `${d.rank90}/${Math.min(d.shape[0], d.shape[1])}`,
    d.verdict +
      (d.ropeUnpermuted ? ' (q/k RoPE order undone)' : '') +
      (d.nonFinite ? ` (non-finite weights: ${d.nonFinite.a} in A, ${d.nonFinite.b} in B)` : ''),
  ];
}

function jsonOf(c: CheckpointComparison): unknown {
  return { ...c, layers: c.layers.map((l) => ({ ...l, sigma: Array.from(l.sigma) })) };
}

export async function compareCommand(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      tolerance: { type: 'string' },
      'no-spectra': { type: 'boolean' },
      layer: { type: 'string', multiple: true },
      'changed-only': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    ['<checkpoint A>', '<checkpoint B>'],
  );
  const pathA = requirePositional(positionals, 0, 'first checkpoint');
  const pathB = requirePositional(positionals, 1, 'second checkpoint');
  const tolerance = numberOption(values.tolerance, '--tolerance', BOUNDS.tolerance) ?? DEFAULT_CHANGE_TOLERANCE;
  const a = await openCheckpoint(resolve(pathA));
  try {
    const b = await openCheckpoint(resolve(pathB));
    try {
      // Each "nothing to compare" has its own cause, told with the file it is about.
      for (const [ck, given] of [
        [a, pathA],
        [b, pathB],
      ] as const) {
        if (ck.linearLayers.length === 0) {
          throw new QuantLensError('bad-argument', 'has no linear layers to compare (see `quant-lens layers`)', given);
        }
      }
      const unknown = (values.layer ?? []).filter((n) => !a.linearLayers.some((l) => l.name === n));
      if (unknown.length) {
        throw new QuantLensError(
          'bad-argument',
          `--layer ${unknown.join(', ')}: not a linear layer of this checkpoint (see \`quant-lens layers\`)`,
          pathA,
        );
      }
      let bar: ProgressBar | null = null;
      const c = await compareCheckpoints(a, b, {
        tolerance,
        spectra: !values['no-spectra'],
        ...(values.layer ? { layers: values.layer } : {}),
        onLayer: (done, total, layer) => {
          bar ??= new ProgressBar(total);
          bar.update(done, layer);
        },
      });
      (bar as ProgressBar | null)?.done();
      if (c.layers.length === 0) {
        const m = c.shapeMismatch[0];
        throw new QuantLensError(
          'bad-argument',
          m
            ? `${pathA} and ${pathB} pair their layers by name but every pair differs in shape (${m.a} is [${m.shapeA.join('×')}] in ${pathA}, ${m.b} is [${m.shapeB.join('×')}] in ${pathB}): not one architecture`
            : `no linear layer of ${pathA} pairs with one of ${pathB} (same name, or same block and role, and shape)`,
        );
      }
      if (values.json) {
        out.write(JSON.stringify(jsonOf(c)) + '\n');
        return 0;
      }
      const changed = c.layers.filter((l) => l.verdict === 'changed').length;
      out.write(
        `${pathA} → ${pathB}: ${c.layers.length} paired layers, ${changed} changed (relative difference > ${tolerance}), ${c.layers.length - changed} unchanged\n`,
      );
      const shown = values['changed-only'] ? c.layers.filter((l) => l.verdict === 'changed') : c.layers;
      out.write(
        formatTable(['layer', '[out×in]', '‖ΔW‖/‖W_A‖', 'max |ΔW|', 'σ₁(ΔW)', 'rank 90 %', 'verdict'], shown.map(row)) +
          '\n',
      );
      if (c.shapeMismatch.length) {
        out.write(
          `shape differs: ${c.shapeMismatch.map((m) => `${m.a} [${m.shapeA.join('×')}] vs ${m.b} [${m.shapeB.join('×')}]`).join('; ')}\n`,
        );
      }
      if (c.onlyInA.length) out.write(`only in A: ${c.onlyInA.join(', ')}\n`);
      if (c.onlyInB.length) out.write(`only in B: ${c.onlyInB.join(', ')}\n`);
      return 0;
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}
