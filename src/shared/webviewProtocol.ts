/**
 * Messages between the extension host and the webviews. Each panel kind has one inbound and one
 * outbound union; `type` discriminates. Large numeric payloads travel as typed arrays.
 */
import type { CheckpointSummary } from './checkpointSummary';

export interface UserFacingError {
  message: string;
  /** The file the problem is in, when there is one. */
  file?: string;
  /** QuantLensError code ('malformed', 'unsupported', …) or 'internal'. */
  code: string;
}

/** Host → checkpoint overview. */
export type OverviewInbound =
  | { type: 'loading'; path: string }
  | { type: 'checkpoint'; summary: CheckpointSummary }
  | { type: 'error'; error: UserFacingError };

/** Checkpoint overview → host. */
export type OverviewOutbound = { type: 'ready' } | { type: 'openLayer'; name: string };
