"""PyTorch side of scripts/bench-encoder-vs-pytorch.sh: the reference music encoder (HF BertModel,
eager attention, float32) at fixed shapes, best of N, one line per shape:
`torch H L HEADS B S patches_per_s_encoder patches_per_s_with_onehot`.

The first rate feeds `inputs_embeds` (encoder only, as our bench); the second adds the
reference's patch embedding (one-hot 64x98 -> Linear), as `clamp/utils.py` runs it.
"""
import sys
import time

import torch
from transformers import BertConfig, BertModel

torch.set_num_threads(int(sys.argv[1]))
repeats = int(sys.argv[2])
shapes = sys.argv[3:]

for shape in shapes:
    h, l, heads, b, s = map(int, shape.split(":"))
    cfg = BertConfig(hidden_size=h, num_hidden_layers=l, num_attention_heads=heads,
                     intermediate_size=4 * h, max_position_embeddings=max(512, s), vocab_size=1)
    cfg._attn_implementation = "eager"
    model = BertModel(cfg, add_pooling_layer=False).eval()
    patch_embedding = torch.nn.Linear(64 * 98, h)
    ids = torch.randint(0, 98, (b, s, 64))
    mask = torch.ones(b, s, dtype=torch.long)

    def encoder_only(x):
        out = model(inputs_embeds=x, attention_mask=mask).last_hidden_state
        return (out * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)

    def with_onehot():
        x = torch.nn.functional.one_hot(ids, num_classes=98).reshape(b, s, 64 * 98).float()
        return encoder_only(patch_embedding(x))

    x = torch.randn(b, s, h)
    rates = []
    with torch.inference_mode():
        for fn in (lambda: encoder_only(x), with_onehot):
            fn()
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t)
            rates.append(b * s / best)
    print(f"torch {h} {l} {heads} {b} {s} {rates[0]:.0f} {rates[1]:.0f}", flush=True)
