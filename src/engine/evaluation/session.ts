/**
 * onnxruntime sessions for edited copies of a user's model. Any model without external data goes
 * to onnxruntime as bytes. A model whose weights live in external data files must be loaded from a
 * file whose folder holds those files (the tensors name them by relative path, and onnxruntime
 * refuses data outside the model's folder, symbolic links resolved): the edited model goes into a
 * private temporary folder beside hard links to the data files, or, where the temporary folder is
 * on another file system, into the model's own folder under a hidden name, deleted as soon as
 * onnxruntime has loaded it.
 */
import { link, mkdir, mkdtemp, rm, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type * as OrtTypes from 'onnxruntime-node';
import type { OnnxModel } from '../onnx/model';
import { ort, type Ort } from '../ort';
import { trackTemporaryOutput } from '../writers/safeOutput';

export { ort, type Ort };
import { editModel, editModelToFile, type GraphEdits } from './graphEdit';

export type OrtSession = OrtTypes.InferenceSession;
export type OrtTensor = OrtTypes.Tensor;

export interface SessionOptions {
  /** onnxruntime intra-op threads; default: all cores. */
  threads?: number;
  /** onnxruntime's per-shape memory plans (see below); off by default. */
  memoryPattern?: boolean;
}

function sessionOptions(o: SessionOptions): OrtTypes.InferenceSession.SessionOptions {
  return {
    ...(o.threads ? { intraOpNumThreads: o.threads } : {}),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // onnxruntime caches a memory plan per distinct set of input shapes; image batches differ in
    // width, so with plans on, memory grew with the number of batches (362 → 618 MB from 50 to
    // 400 recognizer lines) instead of staying at one batch's worth (≈ 400 MB either way without).
    enableMemPattern: o.memoryPattern ?? false,
    // Idle pool threads would spin between our runs and take a core from the JS thread.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

export interface EditedSession {
  session: OrtSession;
  dispose(): Promise<void>;
}

function externalLocations(model: OnnxModel): Map<string, string> {
  const out = new Map<string, string>();
  for (const w of model.weightSources().values()) {
    const d = w.tensor.data;
    if (d.kind === 'external') out.set(d.location, d.path);
  }
  return out;
}

/** Writes the edited model where onnxruntime can load it and opens a session on it. */
export async function openEditedSession(
  model: OnnxModel,
  edits: GraphEdits,
  options: SessionOptions = {},
): Promise<EditedSession> {
  const external = externalLocations(model);
  if (external.size === 0) {
    const bytes = await editModel(model, edits);
    const session = await ort().InferenceSession.create(bytes, sessionOptions(options));
    return { session, dispose: () => session.release() };
  }
  const folder = await mkdtemp(join(tmpdir(), 'quant-lens-eval-'));
  // Tracked so that a signal, or a worker terminated in mid-load, removes them too (safeOutput.ts).
  trackTemporaryOutput(folder, true);
  try {
    let linked = true;
    for (const [location, path] of external) {
      const target = join(folder, location);
      await mkdir(dirname(target), { recursive: true });
      try {
        await link(path, target);
      } catch {
        linked = false;
        break;
      }
    }
    const file = linked
      ? join(folder, 'model.onnx')
      : join(model.external.folder, `.quant-lens-${randomBytes(6).toString('hex')}.onnx`);
    if (!linked) trackTemporaryOutput(file, true);
    let session: OrtSession;
    try {
      await editModelToFile(model, edits, file);
      session = await ort().InferenceSession.create(file, sessionOptions(options));
    } finally {
      if (!linked) {
        await unlink(file).catch(() => undefined);
        trackTemporaryOutput(file, false);
      }
    }
    return {
      session,
      dispose: async () => {
        await session.release();
        await rm(folder, { recursive: true, force: true });
        trackTemporaryOutput(folder, false);
      },
    };
  } catch (e) {
    await rm(folder, { recursive: true, force: true });
    trackTemporaryOutput(folder, false);
    throw e;
  }
}
