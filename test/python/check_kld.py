"""KL divergence of quantized tiny-Llama-style models from the float one, computed independently of
Quant Lens with transformers (+ PEFT), on the text's non-overlapping windows.

    python3 check_kld.py --source <folder> --text eval.txt [--seq-len 128] [--max-windows N]
                         (--ql <file.safetensors> | --hf <folder>) [...]

--ql: the source model with each weight N replaced by W_hat = W_q + (A B)^T from a `quant-lens
export` file. --hf: a `quant-lens export --to hf` folder loaded as transformers loads it, with its
PEFT LoRA adapter (adapter/) applied when there is one. Prints a JSON list, one object per model:
{"mean", "median", "p99", "p999", "max", "same_top", "ppl", "ppl_float", "tokens"}, the per-token
KL(float || quantized) over predicted positions 1..seq_len-1 of every window, percentiles by linear
interpolation between order statistics (llama-perplexity's rule). Exit 3 when a package is missing.
"""

import argparse
import json
import math
import os
import sys

try:
    import torch
    from safetensors import safe_open
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM
except ImportError as e:  # pragma: no cover
    print(f"missing python package: {e.name}", file=sys.stderr)
    sys.exit(3)


def percentile(sorted_values, fraction):
    n = len(sorted_values)
    p = fraction * (n - 1)
    i = int(p)
    t = p - i
    return (1 - t) * sorted_values[i] + t * sorted_values[min(i + 1, n - 1)]


def load(folder):
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def from_quant_lens(source, path):
    q = load(source)
    params = dict(q.named_parameters())
    f = safe_open(path, "pt")
    keys = set(f.keys())
    with torch.no_grad():
        for name in json.loads(f.metadata()["quant_lens"])["layers"]:
            w = f.get_tensor(name).double()
            if f"{name}.lqer_A" in keys:
                w = w + (f.get_tensor(f"{name}.lqer_A").double() @ f.get_tensor(f"{name}.lqer_B").double()).T
            params[name].copy_(w.float())
    return q


def from_hf(folder):
    model = load(folder)
    adapter = os.path.join(folder, "adapter")
    if os.path.isdir(adapter):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).eval()
    return model


def kld(ref, q, windows):
    klds, same, nll_q, nll_f = [], 0, 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(windows), 16):
            x = windows[i : i + 16]
            lf = torch.log_softmax(ref(input_ids=x).logits.double(), -1)[:, :-1]
            lq = torch.log_softmax(q(input_ids=x).logits.double(), -1)[:, :-1]
            klds.extend((lf.exp() * (lf - lq)).sum(-1).clamp_min(0).flatten().tolist())
            same += (lf.argmax(-1) == lq.argmax(-1)).sum().item()
            y = x[:, 1:, None]
            nll_f -= lf.gather(-1, y).sum().item()
            nll_q -= lq.gather(-1, y).sum().item()
    s = sorted(klds)
    m = len(s)
    return {
        "mean": sum(s) / m,
        "median": s[m // 2] if m % 2 else 0.5 * (s[m // 2 - 1] + s[m // 2]),
        "p99": percentile(s, 0.99),
        "p999": percentile(s, 0.999),
        "max": s[-1],
        "same_top": same / m,
        "ppl": math.exp(nll_q / m),
        "ppl_float": math.exp(nll_f / m),
        "tokens": m,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--max-windows", type=int, default=None)
    ap.add_argument("--ql", action="append", default=[])
    ap.add_argument("--hf", action="append", default=[])
    args = ap.parse_args()
    torch.set_num_threads(2)
    ids = Tokenizer.from_file(f"{args.source}/tokenizer.json").encode(open(args.text, encoding="utf-8").read()).ids
    n = len(ids) // args.seq_len
    if args.max_windows is not None:
        n = min(n, args.max_windows)
    windows = torch.tensor(ids[: n * args.seq_len]).view(n, args.seq_len)
    ref = load(args.source)
    models = [from_quant_lens(args.source, p) for p in args.ql] + [from_hf(p) for p in args.hf]
    print(json.dumps([kld(ref, q, windows) for q in models]))


if __name__ == "__main__":
    main()
