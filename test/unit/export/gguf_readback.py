"""Reads a Quant Lens GGUF export back with gguf-py (the test's independent reader).

Usage: python3 gguf_readback.py <export dir> <out.safetensors> [<source model.safetensors>]

Writes, per tensor of model.gguf, its values as gguf-py dequantizes them (`wq/<name>`, numpy order,
i.e. [out, in] for a weight) and, for every weight lora.gguf corrects, the recomposed weight the way
llama.cpp's adapter loader applies it (`what/<name>` = W_q + scale·ΔW, scale = alpha / k, or 1
when alpha is 0; token_embd with A and B the other way round). __metadata__ holds the ggml type of
each tensor, the GGUF keys of both files (scalars and array lengths) and the adapter's alpha.

With a Hugging Face Llama source, also `hf/<gguf name>`: the source tensor as llama.cpp's
convert_hf_to_gguf.py lays it out (q_proj/k_proj rows permuted by its LlamaModel.permute), so the
test checks the export's permutation against the converter's own formula.
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import save_file


def values(reader):
    out = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        v = field.contents()
        if isinstance(v, list):
            out[name] = {"length": len(v), "head": v[:4]}
        else:
            out[name] = v
    return out


def tensors(reader):
    out = {}
    for t in reader.tensors:
        arr = dequantize(t.data, t.tensor_type).astype(np.float32)
        out[t.name] = (arr.reshape([int(d) for d in reversed(t.shape)]), t.tensor_type.name, [int(d) for d in t.shape])
    return out


HF_TO_GGUF = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def converter_permute(weights, n_head, n_head_kv):
    # convert_hf_to_gguf.py, LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def hf_tensors(source):
    import os

    from safetensors.numpy import load_file

    config = json.load(open(os.path.join(os.path.dirname(source), "config.json")))
    n_head = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads", n_head)
    out = {}
    for name, w in load_file(source).items():
        if name == "model.embed_tokens.weight":
            g = "token_embd.weight"
        elif name == "model.norm.weight":
            g = "output_norm.weight"
        elif name == "lm_head.weight":
            g = "output.weight"
        else:
            parts = name.split(".", 3)
            g = f"blk.{parts[2]}.{HF_TO_GGUF[parts[3]]}"
        w = w.astype(np.float32)
        if name.endswith("q_proj.weight"):
            w = converter_permute(w, n_head, n_head)
        if name.endswith("k_proj.weight"):
            w = converter_permute(w, n_head, n_kv)
        out[f"hf/{g}"] = np.ascontiguousarray(w)
    return out


def main():
    folder, dest = sys.argv[1], sys.argv[2]
    model = GGUFReader(f"{folder}/model.gguf")
    mt = tensors(model)
    arrays = {f"wq/{n}": np.ascontiguousarray(a) for n, (a, _, _) in mt.items()}
    meta = {"model": values(model), "types": {n: ty for n, (_, ty, _) in mt.items()}, "dims": {n: d for n, (_, _, d) in mt.items()}}
    try:
        lora = GGUFReader(f"{folder}/lora.gguf")
    except FileNotFoundError:
        lora = None
    if lora is not None:
        meta["lora"] = values(lora)
        lt = tensors(lora)
        meta["lora_types"] = {n: ty for n, (_, ty, _) in lt.items()}
        meta["lora_dims"] = {n: d for n, (_, _, d) in lt.items()}
        alpha = float(lora.fields["adapter.lora.alpha"].contents())
        for name in sorted(n[: -len(".lora_a")] for n in lt if n.endswith(".lora_a")):
            a = lt[f"{name}.lora_a"][0]
            b = lt[f"{name}.lora_b"][0]
            k = b.shape[-1]  # llama.cpp: rank = lora_b->ne[0]
            scale = alpha / k if alpha else 1.0
            w = mt[name][0].astype(np.float64)
            if name == "token_embd.weight":
                delta = a.astype(np.float64) @ b.astype(np.float64).T
            else:
                delta = b.astype(np.float64) @ a.astype(np.float64)
            arrays[f"what/{name}"] = np.ascontiguousarray((w + scale * delta).astype(np.float32))
    if len(sys.argv) > 3:
        arrays.update(hf_tensors(sys.argv[3]))
    save_file(arrays, dest, metadata={"readback": json.dumps(meta, default=str)})


if __name__ == "__main__":
    main()
