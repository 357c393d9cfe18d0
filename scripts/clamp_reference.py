"""A PyTorch stand-in for the reference CLaMP music path, written here from the paper's and
the reference's documented behaviour (not copied): unidecode, header lines as patches, the
body glued and split on bar delimiters with the reference's pairing, 64-symbol patches, an EOS
patch, truncation; then a dense one-hot patch embedding, HF BertModel, masked mean, music_proj.
Batched: tunes in file order, BATCH at a time, zero-padded with an attention mask.

    python scripts/clamp_reference.py MODEL_DIR OUT.jsonl FILE.abc... [--batch 16] [--threads 2] [--sort]

Writes one JSON line per file: {"file", "vector"} (unnormalised, like `--no-normalize`).
"""
import argparse
import json
import re
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel
from unidecode import unidecode

PATCH, SYMBOLS, EOS = 64, 98, 97
DELIMITERS = ["|:", "::", ":|", "[|", "||", "|]", "|"]
SPLIT = re.compile("(" + "|".join(re.escape(d) for d in DELIMITERS) + ")")


def to_patch(text):
    ids = [0] * PATCH
    for i, ch in enumerate(text[:PATCH]):
        code = ord(ch)
        ids[i] = code - 31 if 32 <= code < 127 else 0
    if len(text) < PATCH:
        ids[len(text)] = EOS
    return ids


def bars_of(body):
    pieces = [p for p in SPLIT.split(body) if p]
    if pieces and pieces[0] in DELIMITERS:
        if len(pieces) < 2:
            return []
        pieces = [pieces[0] + pieces[1]] + pieces[2:]
    return [pieces[2 * i] + pieces[2 * i + 1] for i in range(len(pieces) // 2)]


def patches_of(music, limit):
    out, body = [], ""
    for line in unidecode(music).replace("\r", "").split("\n"):
        is_header = (len(line) > 1 and line[0].isalpha() and line[1] == ":") or line.startswith("%%score")
        if is_header:
            out += [to_patch(b) for b in bars_of(body)] if body else []
            body = ""
            out.append(to_patch(line))
        else:
            body += line
    out += [to_patch(b) for b in bars_of(body)] if body else []
    out.append([EOS] * PATCH)
    return out[:limit]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("files", nargs="+")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    # Batches of tunes of similar length (sorted by patch count), as a user of the reference
    # who batches would: less padding per batch than file order.
    p.add_argument("--sort", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    config = json.load(open(f"{a.model}/config.json"))
    limit = config.get("max_length", 512)
    weights = load_file(f"{a.model}/model.safetensors")
    cfg = BertConfig(**{k: v for k, v in config.items() if k != "max_length"})
    enc = BertModel(cfg, add_pooling_layer=False)
    enc.load_state_dict({k[len("music_enc.enc."):]: v for k, v in weights.items()
                         if k.startswith("music_enc.enc.")}, strict=False)
    embed = torch.nn.Linear(PATCH * SYMBOLS, cfg.hidden_size)
    embed.load_state_dict({"weight": weights["music_enc.patch_embedding.weight"],
                           "bias": weights["music_enc.patch_embedding.bias"]})
    proj_w = weights["music_proj.weight"]
    proj = torch.nn.Linear(proj_w.shape[1], proj_w.shape[0])
    proj.load_state_dict({"weight": proj_w, "bias": weights["music_proj.bias"]})
    enc.eval()

    started = time.perf_counter()
    patches = {f: patches_of(open(f, encoding="utf-8").read(), limit) for f in a.files}
    order = sorted(a.files, key=lambda f: len(patches[f])) if a.sort else a.files
    with open(a.out, "w") as out, torch.no_grad():
        for start in range(0, len(order), a.batch):
            files = order[start:start + a.batch]
            tunes = [patches[f] for f in files]
            longest = max(len(t) for t in tunes)
            ids = torch.zeros(len(tunes), longest, PATCH, dtype=torch.long)
            mask = torch.zeros(len(tunes), longest, dtype=torch.long)
            for i, t in enumerate(tunes):
                ids[i, :len(t)] = torch.tensor(t)
                mask[i, :len(t)] = 1
            one_hot = torch.nn.functional.one_hot(ids, SYMBOLS).reshape(len(tunes), longest, -1).float()
            hidden = enc(inputs_embeds=embed(one_hot), attention_mask=mask).last_hidden_state
            pooled = (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
            for f, v in zip(files, proj(pooled)):
                out.write(json.dumps({"file": f, "vector": v.tolist()}) + "\n")
    # The process's wall time includes importing torch and loading the model; this is the
    # patching and embedding alone.
    print(f"reference: {len(a.files)} tunes patched and embedded in "
          f"{time.perf_counter() - started:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
