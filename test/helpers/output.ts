/** A checked output for a file a test or benchmark writes for itself: new or replaced, no inputs to protect. */
import { checkOutputFile, type CheckedOutput } from '../../src/engine/writers/safeOutput';

export function scratchOutput(path: string): Promise<CheckedOutput> {
  return checkOutputFile(path, { inputs: [], force: true });
}
