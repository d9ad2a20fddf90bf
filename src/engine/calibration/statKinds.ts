/** The statistics a calibration file can hold per weight. Node-free, so webviews may import it. */
export const STATS_SUFFIXES = ['act_mean_abs', 'act_rms', 'act_gram', 'act_samples'] as const;
export type StatKind = (typeof STATS_SUFFIXES)[number];
