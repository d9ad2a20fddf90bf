/** Tiny DOM helpers: build elements with text content only (never innerHTML with data). */
export { formatBytes, formatCount } from '../../src/shared/formatting';

type Props = {
  className?: string;
  text?: string;
  title?: string;
  id?: string;
  attrs?: Record<string, string>;
};

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.className) e.className = props.className;
  if (props.id) e.id = props.id;
  if (props.text !== undefined) e.textContent = props.text;
  if (props.title) e.title = props.title;
  for (const [k, v] of Object.entries(props.attrs ?? {})) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

/** A control under its label, the label pointing at the control's id (the caller imports
 * the vscode-label element). */
export function labelledField(label: string, control: HTMLElement, className = 'field'): HTMLElement {
  return el('div', { className }, el('vscode-label', { text: label, attrs: { for: control.id } }), control);
}

/** A header cell of `headedTable`: right-aligned when numeric, with an optional tooltip. */
export interface Column {
  text: string;
  num?: boolean;
  title?: string;
}

/** A static table (no sorting) with one header row, labelled for screen readers. */
export function headedTable(
  className: string,
  label: string,
  columns: readonly Column[],
  rows: readonly HTMLTableRowElement[],
): HTMLTableElement {
  return el(
    'table',
    { className, attrs: { 'aria-label': label } },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ...columns.map((c) =>
          el('th', { text: c.text, ...(c.num ? { className: 'num' } : {}), ...(c.title ? { title: c.title } : {}) }),
        ),
      ),
    ),
    el('tbody', {}, ...rows),
  );
}

/** Runs `activate` on a click, or on Enter or Space when focused: a header or cell used as a button. */
export function onActivate(e: HTMLElement, activate: () => void): void {
  e.addEventListener('click', activate);
  e.addEventListener('keydown', (ev: KeyboardEvent) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      activate();
    }
  });
}

/** Sets an element's text only when it changed (cheap to call on every slider step). */
export function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text;
}

/** Shows an error where the panel would otherwise be blank: script errors included. */
export function showFatal(app: HTMLElement, title: string, message: string): void {
  app.replaceChildren(
    el('h1', { text: title }),
    el('p', { className: 'error', attrs: { role: 'alert' }, text: message }),
  );
}

/** Script errors and unhandled rejections end up on screen, never as a blank panel. */
export function catchGlobalErrors(app: HTMLElement): void {
  const show = (message: string) => {
    const box =
      document.getElementById('script-error') ??
      el('p', { id: 'script-error', className: 'error', attrs: { role: 'alert' } });
    box.textContent = `Something went wrong in this panel: ${message}`;
    if (!box.isConnected) app.prepend(box);
  };
  window.addEventListener('error', (e) => show(e.message));
  window.addEventListener('unhandledrejection', (e: PromiseRejectionEvent) =>
    show(e.reason instanceof Error ? e.reason.message : String(e.reason)),
  );
}
