/**
 * Checkpoints name other files (shard indexes, ONNX external data, TF.js weight shards). A
 * checkpoint from the internet must not make Quant Lens read /etc/passwd or a file in the user's
 * home, so every such name is resolved inside the checkpoint's folder or refused.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { QuantLensError } from '../errors';

function escapes(folder: string, target: string): boolean {
  const rel = relative(folder, target);
  return rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel);
}

/**
 * Resolves `name` (as written in `referrer`) against `folder`. Refuses absolute paths, drive
 * letters, `..` segments, NUL bytes and symbolic links that lead out of the folder.
 */
export function resolveInside(folder: string, name: string, referrer: string, what = 'file'): string {
  const unsafe = (why: string) =>
    new QuantLensError('unsafe', `${what} "${name}" ${why}; only files inside ${folder} are read`, referrer);
  if (name.length === 0) throw new QuantLensError('malformed', `${what} has an empty file name`, referrer);
  if (name.includes('\0')) throw unsafe('contains a NUL byte');
  if (isAbsolute(name) || /^[a-zA-Z]:/.test(name) || name.startsWith('\\') || name.startsWith('/')) {
    throw unsafe('is an absolute path');
  }
  if (name.split(/[\\/]/).includes('..')) throw unsafe('climbs out of the folder with ".."');
  const base = resolve(folder);
  const target = resolve(base, name);
  if (escapes(base, target)) throw unsafe('points outside the folder');
  let realBase: string;
  let realTarget: string;
  try {
    realBase = realpathSync(base);
    realTarget = realpathSync(target);
  } catch (e) {
    throw new QuantLensError(
      'not-found',
      `${what} "${name}" does not exist (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
      referrer,
    );
  }
  if (escapes(realBase, realTarget)) throw unsafe('is a link that leads outside the folder');
  return target;
}
