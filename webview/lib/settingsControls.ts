/**
 * The method, weight format, block size and A/B format selects that the checkpoint overview and
 * the layer panel both show, built from the registries (methods, format choices) in one place.
 */
import type { VscodeSingleSelect } from '@vscode-elements/elements/dist/vscode-single-select/vscode-single-select.js';
import type { MethodChoice } from '../../src/shared/protocol/common';
import {
  BLOCK_SIZE_CHOICES,
  FACTOR_FORMAT_CHOICES,
  WEIGHT_FORMAT_CHOICES,
  blockSizeApplies,
  type QuantSettings,
} from '../../src/shared/quantSettings';
import { selectField, setOptions, setSelectValue, type OptionSpec } from './controls';

/** Methods as the select offers them: those that cannot run are disabled, with the reason. */
export function methodOptions(methods: readonly MethodChoice[]): OptionSpec[] {
  return methods.map((m) => ({
    value: m.name,
    label: m.label,
    description: m.disabledReason ?? m.description,
    disabled: m.disabledReason !== null,
  }));
}

export interface SettingsControls {
  /** The four labelled fields, in display order. */
  fields: HTMLElement[];
  method: VscodeSingleSelect;
  weight: VscodeSingleSelect;
  block: VscodeSingleSelect;
  factor: VscodeSingleSelect;
  /** Offers these methods, `selected` chosen. */
  setMethods(methods: readonly MethodChoice[], selected: string): void;
  /** Shows `s` (the method's options unchanged) and enables the block select where it applies. */
  show(s: QuantSettings): void;
}

export function settingsControls(
  initial: QuantSettings,
  methods: readonly MethodChoice[],
  onChange: (patch: Partial<QuantSettings>) => void,
): SettingsControls {
  const method = selectField('method', 'Method', methodOptions(methods), initial.method, (v) =>
    onChange({ method: v as QuantSettings['method'] }),
  );
  const formatSelect = (id: string, label: string, choices: readonly string[], key: 'weightFormat' | 'factorFormat') =>
    selectField(
      id,
      label,
      choices.map((f) => ({ value: f, label: f.toUpperCase() })),
      initial[key],
      (v) => onChange({ [key]: v }),
    );
  const weight = formatSelect('weight-format', 'Weight format', WEIGHT_FORMAT_CHOICES, 'weightFormat');
  const block = selectField(
    'block-size',
    'Block / group',
    BLOCK_SIZE_CHOICES.map((b) => ({ value: String(b), label: b === -1 ? 'per row' : String(b) })),
    String(initial.blockSize),
    (v) => onChange({ blockSize: Number(v) }),
  );
  const factor = formatSelect('factor-format', 'A/B format', FACTOR_FORMAT_CHOICES, 'factorFormat');
  block.select.disabled = !blockSizeApplies(initial.weightFormat);
  return {
    fields: [method.field, weight.field, block.field, factor.field],
    method: method.select,
    weight: weight.select,
    block: block.select,
    factor: factor.select,
    setMethods: (list, selected) => setOptions(method.select, methodOptions(list), selected),
    show(s) {
      setSelectValue(method.select, s.method);
      setSelectValue(weight.select, s.weightFormat);
      setSelectValue(block.select, String(s.blockSize));
      setSelectValue(factor.select, s.factorFormat);
      block.select.disabled = !blockSizeApplies(s.weightFormat);
    },
  };
}
