"""numpy (LAPACK) reference of test/bench/run.ts: all singular values of E through eigvalsh(EᵀE).

    python3 eigvalsh_reference.py E.bin ROWS COLS OUT_PREFIX [SCALE.bin]

Times, in this process alone, E widened to float64, the Gram EᵀE and numpy.linalg.eigvalsh of it
(the float64 Gram route, Gram included). Writes OUT_PREFIX.json ({"seconds", "blas"}) and
OUT_PREFIX.sv.bin (σ, float64, descending); with SCALE.bin (float64, one per column) also
OUT_PREFIX.scaled.bin: σ of E·diag(s), untimed, for the accuracy check of the scaled spectrum.
"""
import json
import sys
import time

import numpy as np


def blas_info() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode
        return "unknown"


def sigma_from_gram(e64: np.ndarray) -> np.ndarray:
    """σ of a float64 matrix from its smaller Gram."""
    g = e64.T @ e64 if e64.shape[1] <= e64.shape[0] else e64 @ e64.T
    lam = np.linalg.eigvalsh(g)
    return np.sqrt(np.maximum(lam[::-1], 0))


def main() -> None:
    path, rows, cols, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    e = np.fromfile(path, dtype="<f4").reshape(rows, cols)
    t0 = time.perf_counter()
    e64 = e.astype(np.float64)
    sv = sigma_from_gram(e64)
    seconds = time.perf_counter() - t0
    sv.astype("<f8").tofile(out + ".sv.bin")
    if len(sys.argv) > 5:
        s = np.fromfile(sys.argv[5], dtype="<f8")
        sigma_from_gram(e64 * s[None, :]).astype("<f8").tofile(out + ".scaled.bin")
    with open(out + ".json", "w") as f:
        json.dump({"seconds": seconds, "blas": blas_info(), "numpy": np.__version__}, f)


if __name__ == "__main__":
    main()
