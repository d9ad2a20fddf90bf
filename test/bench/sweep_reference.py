"""Reference sweep for test/bench/sweep.ts: what the official LQER code does per layer, in torch.

For each linear layer: MXINT4 fake quantization (blocks of 16 along the input dimension, ceil
exponent), E = W - W_q, svdvals(E) for the "before" spectrum, then torch.linalg.svd of S·Eᵀ with
full_matrices=True as in lqer_act.py (U, Σ, Vᵀ in full), A = S⁻¹U_k, B = Σ_k V_kᵀ, MXINT8 A and B.
Prints LAYERS=<n>, COMPUTE_S=<seconds in the per-layer loop, reading included> and PEAK_RSS_KB=<kB>
for the benchmark driver.

    python3 test/bench/sweep_reference.py <model.safetensors> <stats.safetensors> <n_layers>
"""
import resource
import sys
import time

import torch
from safetensors import safe_open


def mxint(x: torch.Tensor, width: int, block: int = 16) -> torch.Tensor:
    rows, cols = x.shape
    pad = (-cols) % block
    xp = torch.nn.functional.pad(x, (0, pad)).reshape(rows, -1, block)
    mx = xp.abs().amax(dim=-1, keepdim=True).clamp(min=1e-30)
    e = torch.ceil(torch.log2(mx)).clamp(-127, 128)
    scale = torch.exp2(e) / 2 ** (width - 1)
    m = torch.round(xp.abs() / scale).clamp(0, 2 ** (width - 1) - 1)
    q = torch.sign(xp) * m * scale
    return q.reshape(rows, -1)[:, :cols]


def main() -> None:
    ckpt, stats_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    torch.set_num_threads(2)
    k = 32
    names = []
    with safe_open(ckpt, "pt") as f:
        names = [name for name in f.keys() if name.endswith("_proj.weight")]
    order = {"q_proj": 0, "k_proj": 1, "v_proj": 2, "o_proj": 3, "gate_proj": 4, "up_proj": 5, "down_proj": 6}
    names.sort(key=lambda s: (int(s.split(".")[2]), order[s.split(".")[-2]]))
    names = names[:n]
    compute = 0.0
    with safe_open(ckpt, "pt") as f, safe_open(stats_path, "pt") as st:
        for name in names:
            t0 = time.perf_counter()
            w = f.get_tensor(name).float()
            wq = mxint(w, 4)
            e = w - wq
            s = st.get_tensor(name + ".act_mean_abs").float().clamp(min=1e-4)
            s = s / torch.sqrt(s.min() * s.max())
            torch.linalg.svdvals(e)
            u, sig, vh = torch.linalg.svd(torch.diag(s) @ e.T)
            a = torch.diag(1 / s) @ u[:, :k]
            b = torch.diag(sig[:k]) @ vh[:k, :]
            a, b = mxint(a, 8), mxint(b, 8)
            w_hat = wq + (a @ b).T
            _ = (w - w_hat).norm() / w.norm()
            compute += time.perf_counter() - t0
    print(f"LAYERS={len(names)}")
    print(f"COMPUTE_S={compute:.3f}")
    print(f"PEAK_RSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")


if __name__ == "__main__":
    main()
