/**
 * Plain-data descriptions of a checkpoint that cross thread and webview boundaries
 * (structured-clone safe: no class instances, no functions).
 */
import type { CheckpointFormat, LinearLayer, TensorInfo } from '../engine/readers/checkpoint';

export type { CheckpointFormat, LinearLayer, TensorInfo };

export interface CheckpointSummary {
  format: CheckpointFormat;
  path: string;
  files: { path: string; size: number }[];
  metadata: Record<string, string>;
  architecture: string | null;
  /** The model family the layer discovery recognised ('llama', 'gpt2', …), if any. */
  family: string | null;
  /** Things worth telling the user that did not stop the checkpoint from opening. */
  warnings: string[];
  tensors: TensorInfo[];
  linearLayers: LinearLayer[];
  parameterCount: number;
}
