/** Checkpoint overview webview: file facts, linear layers and all tensors. */
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { CheckpointSummary } from '../src/shared/checkpointSummary';
import type { OverviewInbound, OverviewOutbound } from '../src/shared/webviewProtocol';
import { connectToHost } from './lib/host';
import { el, formatBytes, formatCount } from './lib/dom';

const host = connectToHost<OverviewInbound, OverviewOutbound>();
const app = document.getElementById('app')!;

function render(...nodes: Node[]): void {
  app.replaceChildren(...nodes);
}

function renderCheckpoint(s: CheckpointSummary): void {
  const totalBytes = s.files.reduce((a, f) => a + f.size, 0);
  const facts = el(
    'dl',
    { className: 'facts' },
    el('dt', { text: 'Format' }),
    el('dd', { text: s.format }),
    el('dt', { text: 'Architecture' }),
    el('dd', { text: s.architecture ?? 'unknown' }),
    el('dt', { text: 'Parameters' }),
    el('dd', { text: formatCount(s.parameterCount) }),
    el('dt', { text: 'Files' }),
    el('dd', { text: `${s.files.length} (${formatBytes(totalBytes)})` }),
    el('dt', { text: 'Linear layers' }),
    el('dd', { text: String(s.linearLayers.length) }),
  );
  const rows = s.tensors.map((t) =>
    el(
      'tr',
      { attrs: { 'data-name': t.name } },
      el('td', { className: 'name', text: t.name }),
      el('td', { text: t.dtype }),
      el('td', { className: 'shape', text: `[${t.shape.join(', ')}]` }),
    ),
  );
  const table = el(
    'table',
    { className: 'tensors', attrs: { 'aria-label': 'Tensors' } },
    el('thead', {}, el('tr', {}, el('th', { text: 'Name' }), el('th', { text: 'Dtype' }), el('th', { text: 'Shape' }))),
    el('tbody', {}, ...rows),
  );
  const filter = el('vscode-textfield', { attrs: { placeholder: 'Filter tensors', 'aria-label': 'Filter tensors' } });
  filter.addEventListener('input', () => {
    const q = ((filter as unknown as { value: string }).value ?? '').toLowerCase();
    for (const r of rows) r.hidden = q !== '' && !(r.dataset.name ?? '').toLowerCase().includes(q);
  });
  render(
    el('h1', { text: s.path.split(/[\\/]/).pop() ?? s.path, title: s.path }),
    facts,
    el('h2', { text: `Tensors (${s.tensors.length})` }),
    filter,
    table,
  );
}

host.onMessage((msg) => {
  switch (msg.type) {
    case 'loading':
      render(el('p', { className: 'status', text: `Reading ${msg.path}…` }));
      break;
    case 'checkpoint':
      renderCheckpoint(msg.summary);
      break;
    case 'error':
      render(
        el('h1', { text: 'Cannot open this checkpoint' }),
        el('p', { className: 'error', attrs: { role: 'alert' }, text: msg.error.message }),
      );
      break;
  }
});

host.post({ type: 'ready' });
