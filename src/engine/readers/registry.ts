/**
 * Every checkpoint reader, in order of preference when a folder holds several kinds of files
 * (and of asking for a JSON file's content). To add a reader: write its file with a
 * `CheckpointReader` entry (see checkpoint.ts) and add it here; the manifest test then says which
 * package.json lists to extend.
 */
import type { CheckpointReader } from './checkpoint';
import { ggufReader } from './ggufCheckpoint';
import { onnxReader } from './onnxCheckpoint';
import { pytorchIndexReader, pytorchReader } from './pytorchCheckpoint';
import { safetensorsIndexReader, safetensorsReader } from './safetensorsCheckpoint';
import { tfjsReader } from './tfjsCheckpoint';

export const CHECKPOINT_READERS: readonly CheckpointReader[] = [
  safetensorsIndexReader,
  safetensorsReader,
  pytorchIndexReader,
  pytorchReader,
  onnxReader,
  ggufReader,
  tfjsReader,
];

/** Whether a file name matches a glob of `*` wildcards (case-insensitive). */
export function matchesGlob(name: string, glob: string): boolean {
  const pattern = glob
    .toLowerCase()
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${pattern}$`).test(name.toLowerCase());
}

/** Every file-name glob the UI offers, in registry order (explorer menu, pickers, folder index). */
export const CHECKPOINT_FILE_NAMES: readonly string[] = CHECKPOINT_READERS.flatMap((r) => r.fileNames);

/** The reader whose name glob (`*.ext`) claims a file name, or undefined when the content must decide. */
export function readerForName(name: string): CheckpointReader | undefined {
  return CHECKPOINT_READERS.find((r) => claims(r, name));
}

function claims(reader: CheckpointReader, name: string): boolean {
  return [...reader.fileNames, ...(reader.alsoNamed ?? [])].some((g) => g.startsWith('*') && matchesGlob(name, g));
}
