/** Opens any supported checkpoint by looking at its path and first bytes. */
import { QuantLensError } from '../errors';
import type { Checkpoint } from './checkpoint';
import { SafetensorsCheckpoint } from './safetensorsCheckpoint';

export async function openCheckpoint(path: string): Promise<Checkpoint> {
  if (path.endsWith('.safetensors')) return SafetensorsCheckpoint.open(path);
  throw new QuantLensError('unsupported', 'not a checkpoint format Quant Lens reads', path);
}
