/**
 * Fuzzy matching for the layer picker: the query's characters must appear in order (not
 * necessarily together), so "l1dp" finds "layers.1.mlp.down_proj". Matches at word starts
 * (after '.', '_', '/', '-' or a letter/digit change) and runs of consecutive characters score
 * higher; space-separated terms must all match. Free of the VS Code API.
 */

const BOUNDARY = /[._/\-\s]/;

function isWordStart(text: string, i: number): boolean {
  if (i === 0) return true;
  const prev = text[i - 1]!;
  const cur = text[i]!;
  if (BOUNDARY.test(prev)) return true;
  return /\d/.test(prev) !== /\d/.test(cur);
}

/** Score of one term against `text` (higher is better), or null when it does not match. */
function termScore(term: string, text: string): number | null {
  const t = text.toLowerCase();
  const q = term.toLowerCase();
  // Best of a greedy match from each possible first position: cheap and good enough for names.
  let best: number | null = null;
  for (let start = t.indexOf(q[0]!); start >= 0; start = t.indexOf(q[0]!, start + 1)) {
    let score = 0;
    let ti = start;
    let prev = -2;
    let ok = true;
    for (let qi = 0; qi < q.length; qi++) {
      const found = t.indexOf(q[qi]!, ti);
      if (found < 0) {
        ok = false;
        break;
      }
      score += 1;
      if (found === prev + 1) score += 3;
      if (isWordStart(text, found)) score += 2;
      score -= Math.min(3, (found - ti) * 0.1);
      prev = found;
      ti = found + 1;
    }
    if (!ok) break;
    score -= start * 0.01;
    if (best === null || score > best) best = score;
  }
  return best;
}

/** Score of a (possibly multi-term) query, or null when some term does not match. */
export function fuzzyScore(query: string, text: string): number | null {
  const terms = query.trim().split(/\s+/).filter(Boolean);
  if (terms.length === 0) return 0;
  let total = 0;
  for (const term of terms) {
    const s = termScore(term, text);
    if (s === null) return null;
    total += s;
  }
  return total;
}

/** The items matching `query`, best first; ties keep their order. An empty query keeps them all. */
export function fuzzyFilter<T>(items: readonly T[], query: string, textOf: (item: T) => string): T[] {
  if (!query.trim()) return [...items];
  return items
    .map((item, index) => ({ item, index, score: fuzzyScore(query, textOf(item)) }))
    .filter((x): x is { item: T; index: number; score: number } => x.score !== null)
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .map((x) => x.item);
}
