import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_SETTINGS,
  analysisKey,
  describeSettings,
  methodChoices,
  methodFor,
  preferenceAfter,
  sameAnalysis,
  sanitizeSettings,
  sliderMaxRank,
  toAnalysisSettings,
  usableMethod,
  weightFormatString,
} from '../../../src/shared/quantSettings';
import { errorBin, errorDomain, errorPosition, headlineError } from '../../../src/shared/errorScale';

test("the defaults are the CLI's: MXINT4 block 16, A/B MXINT8 along the last dim, rank 32", () => {
  const a = toAnalysisSettings(DEFAULT_SETTINGS, [4096, 11008]);
  assert.deepEqual(a, {
    method: 'lqer',
    weightFormat: 'mxint4',
    factorFormat: 'mxint8',
    factorTiling: 'last-dim',
    maxRank: 512,
  });
  assert.equal(DEFAULT_SETTINGS.rank, 32);
  assert.equal(describeSettings(DEFAULT_SETTINGS), 'LQER · MXINT4 (block 16) · A/B MXINT8 (block 16) · rank 32');
});

test('the slider reaches min(512, out, in); RTN asks for no curves', () => {
  assert.equal(sliderMaxRank([64, 4096]), 64);
  assert.equal(sliderMaxRank([4096, 4096]), 512);
  assert.equal(toAnalysisSettings({ ...DEFAULT_SETTINGS, method: 'rtn' }, [64, 64]).maxRank, 0);
});

test("the block size becomes the format's tile", () => {
  assert.equal(weightFormatString({ weightFormat: 'mxint3', blockSize: 64 }), 'mxint3:block=64');
  assert.equal(weightFormatString({ weightFormat: 'int4', blockSize: 128 }), 'int4:g128');
  assert.equal(weightFormatString({ weightFormat: 'int4', blockSize: -1 }), 'int4:channel');
});

test('the cache key covers everything but the rank, calibration included (it gives every method its output error)', () => {
  const a = toAnalysisSettings(DEFAULT_SETTINGS, [8, 8]);
  assert.equal(
    analysisKey('/m', 'w', a, null),
    analysisKey('/m', 'w', toAnalysisSettings({ ...DEFAULT_SETTINGS, rank: 3 }, [8, 8]), null),
  );
  assert.notEqual(analysisKey('/m', 'w', a, '/stats-1'), analysisKey('/m', 'w', a, null));
  const l2 = toAnalysisSettings({ ...DEFAULT_SETTINGS, method: 'l2qer' }, [8, 8]);
  assert.notEqual(analysisKey('/m', 'w', l2, '/stats-1'), analysisKey('/m', 'w', l2, '/stats-2'));
  assert.notEqual(analysisKey('/m', 'w', a, null), analysisKey('/m', 'w', { ...a, spectra: false }, null));
});

test('untrusted settings are checked field by field', () => {
  assert.deepEqual(sanitizeSettings(null), DEFAULT_SETTINGS);
  const s = sanitizeSettings({
    method: 'qera-exact',
    weightFormat: 'nope',
    blockSize: 0,
    factorFormat: 'fp16',
    rank: 9999,
  });
  assert.deepEqual(s, { method: 'qera-exact', weightFormat: 'mxint4', blockSize: 16, factorFormat: 'fp16', rank: 512 });
  assert.equal(sanitizeSettings({ method: 'magic' }).method, 'lqer');
  assert.equal(sanitizeSettings({ rank: 12.6 }).rank, 13);
});

test('methods without the statistics they need are offered disabled, with the reason', () => {
  const none = methodChoices(null);
  assert.deepEqual(
    none.filter((m) => m.disabledReason).map((m) => m.name),
    ['l2qer', 'qera-approx', 'qera-exact'],
  );
  const partial = methodChoices(new Set(['act_mean_abs', 'act_rms'] as const));
  assert.match(partial.find((m) => m.name === 'qera-exact')!.disabledReason!, /act_gram/);
  assert.equal(usableMethod('qera-exact', new Set(['act_mean_abs'] as const)), 'l2qer');
  assert.equal(usableMethod('l2qer', null), 'lqer');
});

test("'auto' follows the calibration; a picked method stays while the statistics support it", () => {
  const calibrated = new Set(['act_mean_abs', 'act_rms'] as const);
  assert.equal(methodFor('auto', null), 'lqer');
  assert.equal(methodFor('auto', calibrated), 'l2qer', 'calibration set after opening: L²QER');
  assert.equal(methodFor('rtn', calibrated), 'rtn');
  assert.equal(methodFor('lqer', calibrated), 'lqer', 'LQER picked: kept with calibration');
  assert.equal(methodFor('qera-exact', calibrated), 'l2qer', 'no act_gram: the automatic choice');
  assert.equal(methodFor('qera-exact', new Set(['act_mean_abs', 'act_gram'] as const)), 'qera-exact');
  // The rank or a format changed, the method shown kept: 'auto' stays 'auto'.
  assert.equal(preferenceAfter('auto', 'lqer', 'lqer'), 'auto');
  assert.equal(preferenceAfter('auto', 'l2qer', 'lqer'), 'lqer');
  assert.equal(preferenceAfter('qera-exact', 'l2qer', 'l2qer'), 'qera-exact', 'a fallback is not a pick');
});

test('errors are placed on a log scale between the best and the worst', () => {
  const d = errorDomain([0.01, null, 0.1, NaN, 1, 0])!;
  assert.deepEqual(d, { min: 0.01, max: 1 });
  assert.equal(errorPosition(0.1, d), 0.5);
  assert.equal(errorBin(0.01, d), 0);
  assert.equal(errorBin(1, d), 3);
  assert.equal(errorPosition(0.5, { min: 0.5, max: 0.5 }), 0.5);
  assert.equal(errorDomain([null, NaN]), null);
  assert.equal(headlineError({ weightError: 0.2, outputError: null }), 0.2);
  assert.equal(headlineError({ weightError: 0.2, outputError: 0.1 }), 0.1);
});

test('fitted step sizes: the `:fitted` INT format, ignored for the other formats, part of what is analysed', () => {
  const int4 = { ...DEFAULT_SETTINGS, weightFormat: 'int4', blockSize: 128 };
  assert.equal(weightFormatString({ ...int4, fittedSteps: true }), 'int4:g128:fitted');
  assert.equal(weightFormatString(int4), 'int4:g128');
  assert.equal(weightFormatString({ ...DEFAULT_SETTINGS, fittedSteps: true }), 'mxint4');
  assert.ok(!sameAnalysis(int4, { ...int4, fittedSteps: true }), 'fitting the steps recomputes the layer');
  assert.ok(sameAnalysis(DEFAULT_SETTINGS, { ...DEFAULT_SETTINGS, fittedSteps: true }), 'no effect on MXINT');
  assert.equal(sanitizeSettings({ ...int4, fittedSteps: true }).fittedSteps, true);
  assert.equal(sanitizeSettings({ ...int4, fittedSteps: 'yes' }).fittedSteps, undefined);
});
