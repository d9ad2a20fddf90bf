/**
 * An export target: one file format a runtime loads (Quant Lens safetensors, a Hugging Face folder
 * with a PEFT adapter, an llm-compressor recipe, …). Each target lives in its own module under
 * `targets/` and is listed once in `targets.ts`; the CLI, the worker and the extension read that
 * table, so adding a target is one module and one row.
 */
import type { ExportPlan, ExportSelection, LayerRecord } from './plan';
import type { CheckedOutput, OutputInput } from '../writers/safeOutput';

export type ExportDType = 'F32' | 'BF16' | 'F16';

/** A layer (or the whole export, `layer: null`) the target cannot express. */
export interface ExportRefusal {
  layer: string | null;
  /** What cannot be expressed: a format, a rank, a checkpoint format. */
  value: string;
  reason: string;
}

export interface ExportRun {
  /** The file or folder to write (the target's `output` says which). */
  out: string;
  /** Replace an existing output. */
  force?: boolean;
  /** Storage dtype of W_q and the factors; null: the target's default. */
  dtype?: ExportDType | null;
  /** Largest shard of a sharded checkpoint, in bytes (targets that shard). */
  shardBytes?: number;
  /** Files the command reads besides the checkpoint (calibration, recipe): never overwritten. */
  inputs?: OutputInput[];
  /** How the user named the output, for messages: "--out", "the export". */
  outOption?: string;
  signal?: AbortSignal;
  /** Called as each layer's W_q (and factors) are computed. */
  onLayer?: (done: number, total: number, layer: string) => void;
}

/** What a target's write receives: the run, with its output checked. */
export interface ExportWrite extends ExportRun {
  output: CheckedOutput;
}

export interface ExportOutcome {
  target: string;
  /** The file or folder written. */
  path: string;
  /** Every file written, absolute. */
  files: string[];
  layers: Record<string, LayerRecord>;
  /** Tensors written (targets that write tensors). */
  tensors?: number;
  /** Things the user should know: what is not carried, dtypes chosen, fallbacks. */
  notes: string[];
}

export interface ExportTarget {
  readonly id: string;
  /** Short name for pickers and messages: "Hugging Face + PEFT adapter". */
  readonly label: string;
  /** One line: what is written and who loads it. */
  readonly description: string;
  readonly output: 'file' | 'folder';
  /** File extension for save dialogs (file outputs). */
  readonly extension?: string;
  /** The default output name beside a checkpoint whose name without extension is `stem`. */
  defaultName(stem: string): string;
  /** Whether the low-rank correction A·B is carried (otherwise a rank above 0 only earns a note). */
  readonly carriesCorrection: boolean;
  /** Which dtypes `--dtype` may choose; empty: the option does not apply (no tensors written). */
  readonly dtypes: readonly ExportDType[];
  /** Everything in the selection this target cannot express; empty when it can write it all. */
  refusals(selection: ExportSelection): ExportRefusal[];
  /**
   * Writes `run.output`, already checked by runExport against the checkpoint's files and
   * `run.inputs` (a file or a folder as `output` says), through safeOutput.ts's writers only.
   */
  write(plan: ExportPlan, run: ExportWrite): Promise<ExportOutcome>;
}

/** One message naming the target, the layers and the values it cannot express. */
export function refusalMessage(target: ExportTarget, refusals: ExportRefusal[]): string {
  const shown = refusals
    .slice(0, 5)
    .map((r) => (r.layer ? `layer "${r.layer}": ${r.value} — ${r.reason}` : `${r.value} — ${r.reason}`));
  const more = refusals.length > 5 ? `\n  … and ${refusals.length - 5} more` : '';
  return `the ${target.label} export cannot express this:\n  ${shown.join('\n  ')}${more}`;
}

/** A note for targets that do not carry A·B when the plan has a correction. */
export function correctionNote(target: ExportTarget, selection: ExportSelection): string | null {
  if (target.carriesCorrection) return null;
  const corrected = selection.layers.filter((l) => l.rank > 0).length;
  if (!corrected) return null;
  return `the low-rank correction (rank > 0 on ${corrected} layer${corrected === 1 ? '' : 's'}) is not part of the ${target.label}: export --to hf writes it as a PEFT LoRA adapter`;
}

/** The module a weight belongs to: "model.layers.0.mlp.up_proj.weight" → "model.layers.0.mlp.up_proj". */
export function moduleOf(weight: string): string {
  return weight.endsWith('.weight') ? weight.slice(0, -'.weight'.length) : weight;
}

/**
 * Targets that address a Hugging Face model's nn.Linear modules by name (PEFT, llm-compressor,
 * ModelOpt) need a safetensors or PyTorch checkpoint and weights named `<module>.weight`.
 */
export function hfModuleRefusals(selection: ExportSelection, what: string): ExportRefusal[] {
  if (selection.checkpointFormat !== 'safetensors' && selection.checkpointFormat !== 'pytorch') {
    return [
      {
        layer: null,
        value: `a ${selection.checkpointFormat} checkpoint`,
        reason: `${what} names the modules of a Hugging Face model; export from its safetensors or PyTorch checkpoint`,
      },
    ];
  }
  return selection.layers
    .filter((l) => !l.name.endsWith('.weight') || l.stackedIn)
    .map((l) => ({
      layer: l.name,
      value: l.stackedIn ? `a slice of the stacked tensor "${l.stackedIn}"` : 'a weight not named <module>.weight',
      reason: `${what} addresses nn.Linear modules by name`,
    }));
}

/** A format mapped into another tool's terms, or the reason it has none there. */
export interface Unmapped {
  readonly refused: string;
}

export function isUnmapped(x: object): x is Unmapped {
  return typeof (x as { refused?: unknown }).refused === 'string';
}
