"""Writes a randomly initialised CLaMP music model in the official checkpoint layout
(`music_enc.enc.*`, `music_enc.patch_embedding`, `music_proj`; no text tower), for benchmarks at
real shapes without downloading weights. Needs torch, transformers and safetensors (the bench
venv of scripts/bench-encoder-vs-pytorch.sh has them).

    python scripts/make-random-clamp.py OUT_DIR [--hidden 384] [--layers 4] [--heads 6] [--max-length 128]
"""
import argparse
import json
import pathlib

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--hidden", type=int, default=384)
p.add_argument("--layers", type=int, default=4)
p.add_argument("--heads", type=int, default=6)
p.add_argument("--max-length", type=int, default=128)
a = p.parse_args()

torch.manual_seed(0)
cfg = BertConfig(hidden_size=a.hidden, num_hidden_layers=a.layers, num_attention_heads=a.heads,
                 intermediate_size=4 * a.hidden, max_position_embeddings=max(512, a.max_length),
                 vocab_size=1)
music = BertModel(cfg, add_pooling_layer=False)
state = {f"music_enc.enc.{k}": v.contiguous() for k, v in music.state_dict().items()}
patch = torch.nn.Linear(64 * 98, a.hidden)
state["music_enc.patch_embedding.weight"] = patch.weight.detach().contiguous()
state["music_enc.patch_embedding.bias"] = patch.bias.detach().contiguous()
proj = torch.nn.Linear(a.hidden, a.hidden)
state["music_proj.weight"] = proj.weight.detach().contiguous()
state["music_proj.bias"] = proj.bias.detach().contiguous()

out = pathlib.Path(a.out)
out.mkdir(parents=True, exist_ok=True)
save_file({k: v.detach() for k, v in state.items()}, str(out / "model.safetensors"))
config = cfg.to_dict()
config["max_length"] = a.max_length
(out / "config.json").write_text(json.dumps(config, indent=1))
print(f"wrote {out}: hidden {a.hidden}, {a.layers} layers, {a.heads} heads, {a.max_length} patches")
