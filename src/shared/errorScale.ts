/**
 * Where an error sits between the smallest and the largest error analysed so far, on a log scale
 * (errors span decades across a model). The heatmap colours by it continuously; the layer tree
 * turns it into one of four coloured icons.
 */

export interface ErrorDomain {
  min: number;
  max: number;
}

/** Domain of the finite, positive values; null when there are none. */
export function errorDomain(values: Iterable<number | null | undefined>): ErrorDomain | null {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v === null || v === undefined || !Number.isFinite(v) || v <= 0) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return min <= max ? { min, max } : null;
}

/** 0 at the domain's minimum, 1 at its maximum, log-spaced; 0.5 when the domain is one value. */
export function errorPosition(value: number, domain: ErrorDomain): number {
  if (!Number.isFinite(value) || value <= 0) return 0;
  if (domain.max <= domain.min) return 0.5;
  const t = (Math.log(value) - Math.log(domain.min)) / (Math.log(domain.max) - Math.log(domain.min));
  return Math.min(1, Math.max(0, t));
}

export const ERROR_BINS = 4;

/** 0 (best quarter) … 3 (worst quarter). */
export function errorBin(value: number, domain: ErrorDomain): number {
  return Math.min(ERROR_BINS - 1, Math.floor(errorPosition(value, domain) * ERROR_BINS));
}

/** The error a layer is ranked and coloured by: the output error when calibration gives one, else the weight error. */
export function headlineError(
  row: { weightError: number | null; outputError: number | null } | undefined,
): number | null {
  if (!row) return null;
  return row.outputError ?? row.weightError;
}
