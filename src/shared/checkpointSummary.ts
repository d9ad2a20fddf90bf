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
  tensors: TensorInfo[];
  linearLayers: LinearLayer[];
  parameterCount: number;
}
