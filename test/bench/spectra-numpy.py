#!/usr/bin/env python3
"""numpy (LAPACK/OpenBLAS) side of test/bench/spectra.ts.

Usage: spectra-numpy.py MATRIX.bin ROWS COLS REPEATS FULL_REPEATS OUT_PREFIX
Reads a row-major little-endian float32 matrix, times the reference operations (best of REPEATS;
the full SVD with vectors best of FULL_REPEATS, 0 to skip) and writes OUT_PREFIX.json with the
times and OUT_PREFIX.sv.bin with numpy's singular values (float64).
"""
import json
import sys
import time

import numpy as np


def best_of(repeats, fn):
    best = float("inf")
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main():
    path, rows, cols, repeats, full_repeats, out = sys.argv[1:7]
    rows, cols, repeats, full_repeats = int(rows), int(cols), int(repeats), int(full_repeats)
    e = np.fromfile(path, dtype="<f4").reshape(rows, cols)
    times = {}
    times["svd_values"], sv = best_of(repeats, lambda: np.linalg.svd(e, compute_uv=False))
    times["eigvalsh_gram"], _ = best_of(repeats, lambda: np.linalg.eigvalsh(e.T @ e))
    if full_repeats > 0:
        times["svd_full"], _ = best_of(full_repeats, lambda: np.linalg.svd(e, full_matrices=False))
    np.asarray(sv, dtype="<f8").tofile(out + ".sv.bin")
    info = {"numpy": np.__version__, "times": times}
    with open(out + ".json", "w") as f:
        json.dump(info, f)


if __name__ == "__main__":
    main()
