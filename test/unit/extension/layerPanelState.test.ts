import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLayerPanelState } from '../../../src/shared/protocol/layer';
import { DEFAULT_SETTINGS } from '../../../src/shared/quantSettings';

test('a version 1 state comes back as saved', () => {
  const state = {
    version: 1,
    checkpoint: '/models/m.safetensors',
    layer: 'model.layers.0.mlp.up_proj.weight',
    settings: { method: 'l2qer', weightFormat: 'mxint3', blockSize: 32, factorFormat: 'mxint6', rank: 17 },
    raw: true,
  };
  assert.deepEqual(parseLayerPanelState(state), state);
});

test('a version 0 state (settings flat beside the layer) is migrated', () => {
  const parsed = parseLayerPanelState({
    checkpoint: '/m',
    layer: 'w',
    method: 'rtn',
    weightFormat: 'int4',
    blockSize: 128,
    factorFormat: 'mxint8',
    rank: 8,
  });
  assert.deepEqual(parsed, {
    version: 1,
    checkpoint: '/m',
    layer: 'w',
    settings: { method: 'rtn', weightFormat: 'int4', blockSize: 128, factorFormat: 'mxint8', rank: 8 },
    raw: false,
  });
});

test('broken or foreign states are refused or repaired, never trusted', () => {
  assert.equal(parseLayerPanelState(undefined), null);
  assert.equal(parseLayerPanelState('text'), null);
  assert.equal(parseLayerPanelState({ layer: 'w' }), null, 'no checkpoint');
  assert.equal(parseLayerPanelState({ version: 2, checkpoint: '/m', layer: 'w' }), null, 'from a newer extension');
  const repaired = parseLayerPanelState({
    version: 1,
    checkpoint: '/m',
    layer: 'w',
    settings: { rank: -3, method: 7 },
  });
  assert.deepEqual(repaired?.settings, DEFAULT_SETTINGS);
});

test('the reassembly options come back checked; a state without them has none', () => {
  const base = {
    version: 1,
    checkpoint: '/m.safetensors',
    layer: 'l',
    settings: DEFAULT_SETTINGS,
    raw: false,
  };
  assert.equal(parseLayerPanelState(base)!.reassembly, undefined);
  assert.deepEqual(
    parseLayerPanelState({ ...base, reassembly: { weightBits: 3, actBits: 7, channelRatio: 0.3, rank: 8 } })!
      .reassembly,
    { weightBits: 3, actBits: 4, channelRatio: 0.3, rank: 8 },
  );
});
