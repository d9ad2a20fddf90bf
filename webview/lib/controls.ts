/** vscode-elements controls built from data, with the few helpers the panels need. */
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-label/index.js';
import type { VscodeSingleSelect } from '@vscode-elements/elements/dist/vscode-single-select/vscode-single-select.js';
import { el, labelledField } from './dom';

export interface OptionSpec {
  value: string;
  label: string;
  description?: string;
  disabled?: boolean;
}

/** A labelled single-select; `onChange` gets the chosen value. */
export function selectField(
  id: string,
  label: string,
  options: OptionSpec[],
  value: string,
  onChange: (value: string) => void,
): { field: HTMLElement; select: VscodeSingleSelect } {
  const select = el('vscode-single-select', { id, attrs: { 'aria-label': label } });
  setOptions(select, options, value);
  select.addEventListener('change', () => onChange(select.value));
  return { field: labelledField(label, select), select };
}

export function setOptions(select: VscodeSingleSelect, options: OptionSpec[], value: string): void {
  select.replaceChildren(
    ...options.map((o) => {
      const opt = el('vscode-option', { text: o.label, attrs: { value: o.value } });
      if (o.description) opt.description = o.description;
      if (o.disabled) opt.disabled = true;
      if (o.value === value) opt.selected = true;
      return opt;
    }),
  );
  select.value = value;
}

export function setSelectValue(select: VscodeSingleSelect, value: string): void {
  if (select.value !== value) select.value = value;
}
