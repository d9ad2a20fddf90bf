/** The method comparison: every method at the same formats and rank, so at the same bit budget. */
import { formatBits, formatDb, formatPercent } from '../../src/shared/formatting';
import { METHODS } from '../../src/engine/methods/methods';
import { describeSettings } from '../../src/shared/quantSettings';
import type { MethodComparison } from '../../src/shared/protocol/common';
import { el, headedTable } from './dom';

export function methodComparisonTable(c: MethodComparison): HTMLElement {
  const best = Math.min(
    ...c.rows.map((r) => r.outputError ?? r.weightError ?? Infinity).filter((v) => Number.isFinite(v)),
  );
  const rows = c.rows.map((r) => {
    const headline = r.outputError ?? r.weightError;
    const isBest = headline !== null && headline === best;
    return el(
      'tr',
      {
        className: [r.skipped ? 'skipped' : '', isBest ? 'best' : ''].filter(Boolean).join(' '),
        attrs: { 'data-method': r.method },
      },
      el('td', { text: r.label + (isBest ? ' ★' : ''), title: isBest ? 'lowest error at this budget' : '' }),
      el('td', { className: 'num', text: formatPercent(r.weightError) }),
      el('td', { className: 'num', text: formatPercent(r.outputError) }),
      el('td', { className: 'num', text: r.skipped ? '—' : formatDb(r.weightSqnrDb) }),
      el('td', { className: 'num', text: formatPercent(r.recovered, 1) }),
      el('td', { className: 'num', text: formatBits(r.bitsPerWeight) }),
      el('td', {
        className: 'note',
        text: r.skipped ?? (r.failures ? `${r.failures} layer${r.failures > 1 ? 's' : ''} failed` : ''),
      }),
    );
  });
  return el(
    'div',
    { className: 'comparison' },
    el('p', {
      className: 'caption',
      // The method in the settings is the one on screen, not the one compared: leave it out.
      text: `${c.scope} · ${describeSettings(c.settings).replace(`${METHODS[c.settings.method].label} · `, '')} · every correction at ${formatBits(c.bitsPerWeight)} bits per weight (RTN, without A·B, at fewer)`,
    }),
    headedTable(
      'comparison-table',
      'Method comparison at the same bit budget',
      [
        { text: 'Method' },
        ...['Weight error', 'Output error', 'SQNR', 'Recovered', 'Bits/w'].map((text) => ({ text, num: true })),
        { text: '' },
      ],
      rows,
    ),
  );
}
