/**
 * Text as language-model input: a Hugging Face tokenizer.json (run by @huggingface/tokenizers,
 * pure JS) turns the text into token ids, which are cut into non-overlapping windows of a fixed
 * length, the remainder dropped (LQER's WikiText-2 protocol, docs/algorithms.md §4).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { QuantLensError } from '../errors';

export interface TokenizedText {
  ids: Int32Array;
  /** Largest id the tokenizer can produce (vocabulary size − 1, added tokens included). */
  maxId: number;
}

function readJson(path: string, what: string): unknown {
  if (!existsSync(path)) throw new QuantLensError('not-found', `no such ${what}`, path);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (e) {
    throw new QuantLensError('malformed', `is not JSON (${(e as Error).message})`, path);
  }
}

function largestId(json: Record<string, unknown>): number {
  let max = -1;
  const model = json.model as { vocab?: unknown } | undefined;
  const vocab = model?.vocab;
  if (Array.isArray(vocab))
    max = vocab.length - 1; // Unigram: [[piece, score], …]
  else if (vocab && typeof vocab === 'object')
    for (const v of Object.values(vocab)) if (typeof v === 'number') max = Math.max(max, v);
  for (const t of (json.added_tokens as { id?: number }[] | undefined) ?? [])
    if (typeof t.id === 'number') max = Math.max(max, t.id);
  return max;
}

/** Tokenizes a text file with a tokenizer.json (and the tokenizer_config.json beside it, if any). */
export function tokenizeFile(textPath: string, tokenizerPath: string): TokenizedText {
  if (!existsSync(textPath)) throw new QuantLensError('not-found', 'no such text file', textPath);
  if (statSync(textPath).isDirectory())
    throw new QuantLensError('bad-argument', 'is a folder; language models take a text file', textPath);
  const json = readJson(tokenizerPath, 'tokenizer.json');
  if (!json || typeof json !== 'object' || !('model' in json))
    throw new QuantLensError('malformed', 'is not a Hugging Face tokenizer.json (no "model")', tokenizerPath);
  const configPath = join(dirname(tokenizerPath), 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJson(configPath, 'tokenizer_config.json') : {};
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, config as object);
  } catch (e) {
    throw new QuantLensError('unsupported', `cannot be loaded (${(e as Error).message})`, tokenizerPath);
  }
  const text = readFileSync(textPath, 'utf8');
  if (!text.trim()) throw new QuantLensError('bad-argument', 'is empty', textPath);
  // No BOS/EOS: the windows are slices of one running text, as in the reference protocol.
  const ids = Int32Array.from(tokenizer.encode(text, { add_special_tokens: false }).ids);
  return { ids, maxId: largestId(json) };
}

/** Non-overlapping windows of `length` tokens (the remainder dropped), at most `limit` of them. */
export function tokenWindows(ids: Int32Array, length: number, limit = Infinity): Int32Array[] {
  if (!Number.isInteger(length) || length < 2) {
    throw new QuantLensError('bad-argument', `sequence length must be an integer ≥ 2, got ${length}`);
  }
  const out: Int32Array[] = [];
  for (let s = 0; s + length <= ids.length && out.length < limit; s += length) out.push(ids.subarray(s, s + length));
  return out;
}

/**
 * Checks that every id fits the model's vocabulary (embedding rows / logits): a tokenizer from
 * another model would otherwise index out of range, or silently measure nonsense.
 */
export function checkVocabulary(ids: Int32Array, modelVocab: number | null, tokenizerPath: string): void {
  if (modelVocab === null) return;
  let max = -1;
  for (const v of ids) if (v > max) max = v;
  if (max >= modelVocab) {
    throw new QuantLensError(
      'bad-argument',
      `produces token id ${max}, but the model has a vocabulary of ${modelVocab}: this tokenizer belongs to another model`,
      tokenizerPath,
    );
  }
}
