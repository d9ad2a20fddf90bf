"""Reads back the runtime recipes Quant Lens writes and checks them against the schemas of the
tools that load them, without those tools (compressed-tensors and llm-compressor are not in the
wheel mirror; ModelOpt needs CUDA):

  --llm-compressor FILE   yaml.safe_load (as llm-compressor's Recipe.create_instance loads .yaml),
                          then the stage / modifiers layout of `Recipe.from_dict` and pydantic models
                          holding the fields and validation rules of compressed-tensors'
                          QuantizationArgs and QuantizationScheme (extra keys forbidden; group and
                          tensor_group need group_size > 0, group_size needs one of them, block needs
                          block_structure and the other way round, scale_dtype a torch dtype name);
                          read in vllm-project/compressed-tensors @ ac8e2ba
                          src/compressed_tensors/quantization/{quant_args,quant_scheme}.py and
                          vllm-project/llm-compressor @ ab1ba3e src/llmcompressor/recipe/recipe.py,
                          modifiers/quantization/quantization/mixin.py. Each Linear module of the
                          model (built from its config.json on the meta device) is then matched as
                          compressed-tensors matches (`re:` → re.match, else the exact name or the
                          class name), and its scheme reported.
  --modelopt FILE         the hf_quant_config.json layout ModelOpt's export writes
                          (NVIDIA/Model-Optimizer @ a2fbac7 modelopt/torch/export/quant_utils.py)
                          with per-layer fields limited to TensorRT-LLM's QuantConfig fields and
                          module names matched with fnmatch as TensorRT-LLM's LayerQuantConfig does.
  --model FOLDER          the Hugging Face folder (config.json) whose modules are matched.

Prints one JSON object: {"llm_compressor": {module: weights args | "ignored" | null},
"modelopt": {module: layer config | "excluded" | null}, "presets": {name: weights args}}.
Exit 3 when a needed package is missing.
"""

import argparse
import fnmatch
import json
import re
import sys
from typing import Literal, Optional, Union

try:
    import torch
    import yaml
    from pydantic import BaseModel, ConfigDict, field_validator, model_validator
    from transformers import AutoConfig, AutoModelForCausalLM
except ImportError as e:  # pragma: no cover - reported by the caller
    print(f"missing python package: {e.name}", file=sys.stderr)
    sys.exit(3)


class QuantizationArgs(BaseModel):
    """The fields and rules of compressed_tensors.quantization.QuantizationArgs."""

    model_config = ConfigDict(extra="forbid")
    num_bits: int = 8
    type: Literal["int", "float"] = "int"
    symmetric: bool = True
    group_size: Optional[int] = None
    strategy: Optional[Literal["tensor", "channel", "group", "block", "token", "tensor_group", "attn_head"]] = None
    block_structure: Optional[list[int]] = None
    dynamic: Union[bool, Literal["local"]] = False
    actorder: Optional[Union[bool, str]] = None
    scale_dtype: Optional[str] = None
    zp_dtype: Optional[str] = None
    observer: Optional[str] = None
    observer_kwargs: dict = {}

    @field_validator("scale_dtype", "zp_dtype")
    @classmethod
    def torch_dtype(cls, v):
        if v is not None and not isinstance(getattr(torch, v.removeprefix("torch."), None), torch.dtype):
            raise ValueError(f"no such torch dtype {v}")
        return v

    @field_validator("group_size")
    @classmethod
    def group(cls, v):
        if v is not None and v < -1:
            raise ValueError(f"invalid group size {v}")
        return v

    @model_validator(mode="after")
    def rules(self):
        strategy = self.strategy
        if strategy is None:
            strategy = "tensor" if self.group_size is None else "group" if self.group_size > 0 else "channel"
        if strategy in ("group", "tensor_group") and (self.group_size is None or self.group_size <= 0):
            raise ValueError(f"strategy {strategy} requires group_size > 0")
        if self.group_size is not None and self.group_size > 0 and strategy not in ("group", "tensor_group"):
            raise ValueError("group_size requires strategy group or tensor_group")
        if (strategy == "block") != (self.block_structure is not None):
            raise ValueError("block strategy and block_structure go together")
        if self.block_structure is not None and (len(self.block_structure) != 2 or min(self.block_structure) <= 0):
            raise ValueError("block_structure must be two positive ints")
        if strategy == "token" and not self.dynamic:
            raise ValueError("static token quantization is not possible")
        if self.dynamic == "local" and strategy != "tensor_group":
            raise ValueError("dynamic local only with tensor_group")
        self.strategy = strategy
        return self


class QuantizationScheme(BaseModel):
    model_config = ConfigDict(extra="forbid")
    targets: list[str]
    weights: Optional[QuantizationArgs] = None
    input_activations: Optional[QuantizationArgs] = None
    output_activations: Optional[QuantizationArgs] = None
    format: Optional[str] = None


class QuantizationModifierArgs(BaseModel):
    """The QuantizationMixin fields a recipe may set (mixin.py); `group` and the base Modifier's
    `start`/`end`/`index` are accepted by llm-compressor too but not written here."""

    model_config = ConfigDict(extra="forbid")
    config_groups: Optional[dict[str, QuantizationScheme]] = None
    targets: Union[str, list[str]] = ["Linear"]
    ignore: list[str] = []
    scheme: Optional[Union[str, dict]] = None
    kv_cache_scheme: Optional[QuantizationArgs] = None
    bypass_divisibility_checks: bool = False


# Weights of compressed-tensors' preset schemes (quant_scheme.py), for the caller to compare with.
PRESETS = {
    "W4A16": dict(num_bits=4, type="int", strategy="group", group_size=128, symmetric=True, dynamic=False),
    "W4A16_ASYM": dict(num_bits=4, type="int", strategy="group", group_size=128, symmetric=False, dynamic=False),
    "W8A16": dict(num_bits=8, type="int", strategy="group", group_size=128, symmetric=True, dynamic=False),
    "INT8_W8A8": dict(num_bits=8, type="int", strategy="channel", symmetric=True, dynamic=False),
    "FP8_DYNAMIC": dict(num_bits=8, type="float", strategy="channel", symmetric=True, dynamic=False),
    "FP8": dict(num_bits=8, type="float", strategy="tensor", symmetric=True, dynamic=False),
    "FP8_BLOCK": dict(num_bits=8, type="float", strategy="block", symmetric=True, dynamic=False, block_structure=[128, 128]),
    "NVFP4A16": dict(num_bits=4, type="float", strategy="tensor_group", symmetric=True, dynamic=False, group_size=16, scale_dtype="float8_e4m3fn"),
    "MXFP4A16": dict(num_bits=4, type="float", strategy="group", symmetric=True, dynamic=False, group_size=32, scale_dtype="uint8"),
    "MXFP8A16": dict(num_bits=8, type="float", strategy="group", symmetric=True, dynamic=False, group_size=32, scale_dtype="uint8"),
}

# TensorRT-LLM's QuantConfig fields (tensorrt_llm/models/modeling_utils.py) and the quant_algo names
# ModelOpt's process_layer_quant_config writes.
TRTLLM_FIELDS = {"quant_algo", "kv_cache_quant_algo", "group_size", "smoothquant_val", "clamp_val", "use_meta_recipe", "has_zero_point", "pre_quant_scale", "exclude_modules"}
MODELOPT_ALGOS = {"FP8", "FP8_PER_CHANNEL_PER_TOKEN", "W4A16_AWQ", "W4A8_AWQ", "W8A16", "W8A8_SQ_PER_CHANNEL", "NVFP4", "W4A16_NVFP4", "NVFP4_AWQ", "W4A8_NVFP4_FP8", "W4A8_MXFP4_FP8", "MXFP8"}


KEYS = ("num_bits", "type", "symmetric", "strategy", "group_size", "block_structure", "scale_dtype", "dynamic")


def normalized(args):
    """The weight-format fields of validated args (strategy inferred), None values left out."""
    d = args.model_dump()
    return {k: d[k] for k in KEYS if d.get(k) is not None}


def linear_modules(folder):
    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def ct_match(name, module, target):
    if target.startswith("re:"):
        return re.match(target[3:], name) is not None
    return target == name or any(c.__name__ == target for c in type(module).__mro__)


def check_llm_compressor(path, modules):
    with open(path) as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict), "recipe must be a mapping"
    found = []
    for stage_key, stage in doc.items():
        assert stage_key.endswith("_stage") and isinstance(stage, dict), f"unexpected top-level key {stage_key}"
        for group_key, group in stage.items():
            assert group_key.endswith("_modifiers") and isinstance(group, dict), f"unexpected key {group_key}"
            for mod_type, mod_args in group.items():
                assert mod_type == "QuantizationModifier", mod_type
                found.append(QuantizationModifierArgs.model_validate(mod_args))
    assert len(found) == 1, f"{len(found)} QuantizationModifiers"
    qm = found[0]
    out = {}
    for name, module in modules.items():
        if any(ct_match(name, module, t) for t in qm.ignore):
            out[name] = "ignored"
            continue
        hits = [g for g in qm.config_groups.values() if any(ct_match(name, module, t) for t in g.targets)]
        assert len(hits) <= 1, f"{name} matched by {len(hits)} groups"
        out[name] = normalized(hits[0].weights) if hits else None
    unused = [t for g in qm.config_groups.values() for t in g.targets if not any(ct_match(n, m, t) for n, m in modules.items())]
    assert not unused, f"targets matching no module: {unused[:3]}"
    return out


def check_modelopt(path, modules):
    with open(path) as f:
        doc = json.load(f)
    assert set(doc) == {"producer", "quantization"}, set(doc)
    q = doc["quantization"]
    out = {}
    if q["quant_algo"] == "MIXED_PRECISION":
        assert set(q) == {"quant_algo", "kv_cache_quant_algo", "quantized_layers"}, set(q)
        for layer, cfg in q["quantized_layers"].items():
            assert set(cfg) <= TRTLLM_FIELDS, f"{layer}: fields {set(cfg) - TRTLLM_FIELDS}"
            assert cfg["quant_algo"] in MODELOPT_ALGOS, cfg["quant_algo"]
        for name in modules:
            hits = [cfg for pattern, cfg in q["quantized_layers"].items() if fnmatch.fnmatch(name, pattern)]
            out[name] = hits[0] if hits else None
    else:
        assert q["quant_algo"] in MODELOPT_ALGOS, q["quant_algo"]
        assert set(q) <= TRTLLM_FIELDS, set(q) - TRTLLM_FIELDS
        layer = {k: v for k, v in q.items() if k not in ("kv_cache_quant_algo", "exclude_modules")}
        for name in modules:
            out[name] = "excluded" if any(fnmatch.fnmatch(name, p) for p in q.get("exclude_modules", [])) else layer
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--llm-compressor")
    ap.add_argument("--modelopt")
    args = ap.parse_args()
    modules = linear_modules(args.model)
    result = {"presets": {k: normalized(QuantizationArgs.model_validate(v)) for k, v in PRESETS.items()}}
    if args.llm_compressor:
        result["llm_compressor"] = check_llm_compressor(args.llm_compressor, modules)
    if args.modelopt:
        result["modelopt"] = check_modelopt(args.modelopt, modules)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
