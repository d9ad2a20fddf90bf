/**
 * Thins a long series for drawing: a 4096-long spectrum is drawn into a few hundred pixels, so
 * each pixel column needs only its smallest and largest value. Buckets keep their min and max in
 * index order (the curve's envelope survives, spikes included), and the first and last points are
 * always kept. Pure; unit-tested.
 */

export interface Points {
  /** x of each kept point (the index in the input, plus `x0`). */
  x: Float64Array;
  y: Float64Array;
}

export function decimateMinMax(values: ArrayLike<number>, maxPoints: number, x0 = 0): Points {
  const n = values.length;
  if (n <= Math.max(2, maxPoints)) {
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = i + x0;
      y[i] = values[i]!;
    }
    return { x, y };
  }
  const buckets = Math.max(1, Math.floor((maxPoints - 2) / 2));
  const xs: number[] = [x0];
  const ys: number[] = [values[0]!];
  // The interior [1, n-1) is split into `buckets` runs of (almost) equal length.
  const span = (n - 2) / buckets;
  for (let b = 0; b < buckets; b++) {
    const start = 1 + Math.floor(b * span);
    const end = 1 + Math.floor((b + 1) * span);
    if (end <= start) continue;
    let iMin = start;
    let iMax = start;
    for (let i = start + 1; i < end; i++) {
      const v = values[i]!;
      // NaN never wins a comparison; a bucket of NaN keeps its first point.
      if (v < values[iMin]!) iMin = i;
      if (v > values[iMax]!) iMax = i;
    }
    const first = Math.min(iMin, iMax);
    const second = Math.max(iMin, iMax);
    xs.push(first + x0);
    ys.push(values[first]!);
    if (second !== first) {
      xs.push(second + x0);
      ys.push(values[second]!);
    }
  }
  xs.push(n - 1 + x0);
  ys.push(values[n - 1]!);
  return { x: Float64Array.from(xs), y: Float64Array.from(ys) };
}

/** Keeps only the largest value per bucket: for activation scales, where the outliers matter. */
export function decimateMax(values: ArrayLike<number>, maxPoints: number, x0 = 0): Points {
  const n = values.length;
  if (n <= Math.max(1, maxPoints)) return decimateMinMax(values, Math.max(2, maxPoints), x0);
  const span = n / maxPoints;
  const x = new Float64Array(maxPoints);
  const y = new Float64Array(maxPoints);
  for (let b = 0; b < maxPoints; b++) {
    const start = Math.floor(b * span);
    const end = Math.min(n, Math.floor((b + 1) * span));
    let best = start;
    for (let i = start + 1; i < end; i++) if (values[i]! > values[best]!) best = i;
    x[b] = best + x0;
    y[b] = values[best]!;
  }
  return { x, y };
}
