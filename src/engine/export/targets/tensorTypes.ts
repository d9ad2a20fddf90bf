/**
 * A tensor-type file for llama-quantize (`--tensor-type-file`): one `pattern=type` per line, the
 * pattern a regular expression matched against GGUF tensor names (llama-quantize lower-cases it,
 * applies std::regex_search, and the last matching line wins), for users who quantize with
 * llama.cpp themselves from an F16/F32 GGUF. Each planned layer gets an anchored pattern with its
 * GGUF name (convert_hf_to_gguf.py's names for a Llama-family checkpoint, the names as they are
 * for a GGUF one).
 *
 *   llama-quantize --tensor-type-file types.txt model-f16.gguf model-q.gguf Q4_K_M
 *
 * llama-quantize applies its own fall-back to rows that do not split into a type's blocks, the
 * same one Quant Lens reports; it cannot carry the low-rank correction (export --to gguf does) or
 * the importance weighting (pass llama-imatrix's file with --imatrix).
 */
import { QuantLensError } from '../../errors';
import { writeOutputText } from '../../writers/safeOutput';
import { layerRecords, type ExportPlan } from '../plan';
import type { ExportOutcome, ExportTarget, ExportWrite } from '../target';
import { llamaGgufName } from '../llamaGguf';
import { ggufLayerType, ggufRefusals } from './gguf';

/** A regular expression matching exactly `name` (ECMAScript syntax, which std::regex reads too). */
function exactPattern(name: string): string {
  return `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
}

export const tensorTypesTarget: ExportTarget = {
  id: 'tensor-types',
  label: 'llama-quantize tensor-type file',
  description: 'one regex=type line per layer for llama-quantize --tensor-type-file',
  output: 'file',
  extension: 'txt',
  defaultName: (stem) => `${stem}.tensor-types.txt`,
  carriesCorrection: false,
  dtypes: [],
  refusals: (selection) => ggufRefusals(selection, 'a llama-quantize tensor-type file'),
  write: writeTensorTypes,
};

async function writeTensorTypes(plan: ExportPlan, run: ExportWrite): Promise<ExportOutcome> {
  const gguf = plan.checkpoint.format === 'gguf';
  if (!gguf && plan.checkpoint.family !== 'llama') {
    throw new QuantLensError(
      'unsupported',
      `llama.cpp's tensor names are known here for Llama-family checkpoints only (this one is ${plan.checkpoint.architecture ?? 'of an unknown architecture'}); open the converted GGUF instead`,
      plan.checkpoint.path,
    );
  }
  const lines: string[] = [];
  let weighted = 0;
  for (const l of plan.layers) {
    const name = gguf ? l.name : llamaGgufName(l.name);
    if (!name)
      throw new QuantLensError('unsupported', `layer "${l.name}" has no llama.cpp tensor name`, plan.checkpoint.path);
    const kind = ggufLayerType(l.format);
    if (!kind) throw new Error(`no llama.cpp type for ${l.format}`);
    const type = 'ggml' in kind ? kind.ggml : kind.float === 16 ? 'f16' : 'f32';
    if ('ggml' in kind && kind.imatrix) weighted++;
    lines.push(`${exactPattern(name)}=${type}`);
  }
  await writeOutputText(run.output, lines.join('\n') + '\n', run.signal);
  const notes = [
    `quantize with: llama-quantize --tensor-type-file ${run.out} <model-f16.gguf> <out.gguf> <base type>; layers not listed take the base type`,
  ];
  if (weighted)
    notes.push(`${weighted} layers were chosen with importance weights: pass llama-imatrix's file with --imatrix too`);
  return {
    target: tensorTypesTarget.id,
    path: run.out,
    files: [run.output.destination],
    layers: layerRecords(plan),
    notes,
  };
}
