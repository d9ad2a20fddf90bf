"""Reads back a `quant-lens export --to hf` folder with transformers + PEFT and checks it against
Quant Lens's own export of the same settings (`--to quant-lens`: W_q, N.lqer_A, N.lqer_B).

    python3 check_hf_export.py --source <checkpoint folder> --pair <export folder> <file.safetensors> [--pair …]

Prints one JSON list, an object per pair:
  wq_bitwise_equal   every quantized weight in the HF folder equals the quant-lens W_q exactly
  max_abs_logit_diff max |logits(base + adapter) - logits(model with W_hat)| over the test input
  merged_max_abs     the same after PEFT's merge_and_unload
  without_adapter_max_abs  the same for W_q alone (a control: the adapter must matter)
  logit_scale        max |logits| of the reference, for a relative tolerance
  adapter            r, lora_alpha and rank_pattern as PEFT parsed them
Exit 3 when transformers, peft, torch or safetensors is missing (the caller skips, saying so).
"""

import argparse
import json
import sys

try:
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM
    from peft import PeftConfig, PeftModel
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing python package: {e.name}", file=sys.stderr)
    sys.exit(3)


def load(folder):
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--pair", nargs=2, action="append", required=True, metavar=("HF_FOLDER", "QL_FILE"))
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    print(json.dumps([check(args.source, hf, ql, args.seed) for hf, ql in args.pair]))


def check(source, hf, ql_file, seed):
    torch.manual_seed(seed)
    # Reference: the source model with each quantized weight replaced by W_hat = W_q + (A B)^T,
    # composed in float64 from the quant-lens export.
    ref = load(source)
    params = dict(ref.named_parameters())
    modules = dict(ref.named_modules())
    ql = safe_open(ql_file, "pt")
    meta = json.loads(ql.metadata()["quant_lens"])
    keys = set(ql.keys())
    wq = {}
    with torch.no_grad():
        for name in meta["layers"]:
            w_q = ql.get_tensor(name).double()
            wq[name] = w_q
            w_hat = w_q
            if f"{name}.lqer_A" in keys:
                a = ql.get_tensor(f"{name}.lqer_A").double()
                b = ql.get_tensor(f"{name}.lqer_B").double()
                # GPT-2's Conv1D stores [in, out]: there the correction is A B itself.
                conv1d = type(modules[name[: -len(".weight")]]).__name__ == "Conv1D"
                w_hat = w_q + (a @ b if conv1d else (a @ b).T)
            params[name].copy_(w_hat.float())

    # The HF folder's weights, as transformers loads them (sharded or not).
    base = load(hf)
    base_params = dict(base.named_parameters())
    equal = all(torch.equal(base_params[n].double(), wq[n]) for n in wq)

    ids = torch.randint(0, ref.config.vocab_size, (2, 48))
    with torch.no_grad():
        want = ref(input_ids=ids).logits
        # The control: W_q alone, without the adapter, must differ clearly, or the check proves nothing.
        bare = base(input_ids=ids).logits
    cfg = PeftConfig.from_pretrained(f"{hf}/adapter")
    model = PeftModel.from_pretrained(base, f"{hf}/adapter").eval()
    with torch.no_grad():
        got = model(input_ids=ids).logits
        merged = model.merge_and_unload()(input_ids=ids).logits
    return {
        "wq_bitwise_equal": bool(equal),
        "quantized_layers": len(wq),
        "max_abs_logit_diff": (got - want).abs().max().item(),
        "merged_max_abs": (merged - want).abs().max().item(),
        "without_adapter_max_abs": (bare - want).abs().max().item(),
        "logit_scale": want.abs().max().item(),
        "adapter": {"r": cfg.r, "lora_alpha": cfg.lora_alpha, "rank_pattern": cfg.rank_pattern},
    }


if __name__ == "__main__":
    main()
