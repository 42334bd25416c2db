#!/usr/bin/env python3
"""Optional cross-check of tapeformer against PyTorch (not run by the tests).

Rebuilds the model of an exported weights file (or checkpoint) with
torch.nn.Transformer as README.md ("The model") describes, computes the log-likelihood
of each target token (EOS included) for a few source/target pairs, and compares
with `tapeformer score`. Needs torch (checked with 1.13) and numpy:

    build/tapeformer export runs/copy/checkpoint.safetensors /tmp/copy.safetensors
    python3 tools/check_torch.py /tmp/copy.safetensors [PAIRS.tsv] [--tol 1e-4]

Without PAIRS.tsv it scores a few pairs built from the vocabulary. The
reference runs in float64; prints the largest absolute difference per binary
(build/tapeformer float, build/tapeformer64 double) and exits 1 above --tol.
"""
import argparse
import configparser
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAD, BOS, EOS, UNK = 0, 1, 2, 3
DTYPES = {"F32": np.float32, "F64": np.float64}


def read_safetensors(path):
    """Tensors (as float64 torch tensors) and metadata of a safetensors file."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        if name.startswith("optimizer."):
            continue
        s, e = t["data_offsets"]
        a = np.frombuffer(data[8 + n + s:8 + n + e], dtype=DTYPES[t["dtype"]])
        tensors[name] = torch.from_numpy(a.astype(np.float64).reshape(t["shape"]))
    return tensors, meta


class Vocab:
    def __init__(self, text):
        lines = text.split("\n")
        _, src_mode, tgt_mode = lines[0].split()
        self.modes = {"src": src_mode, "tgt": tgt_mode}
        self.tokens = ["<pad>", "<bos>", "<eos>", "<unk>"] + [t for t in lines[1:] if t]
        self.ids = {t: i for i, t in enumerate(self.tokens)}

    def encode(self, side, text):
        toks = text.split() if self.modes[side] == "word" else [c for c in text if not c.isspace()]
        return [self.ids.get(t, UNK) for t in toks]


def positions(kind, T, C, learned):
    if kind == "none":
        return torch.zeros(T, C, dtype=torch.float64)
    if kind == "learned":
        return learned[:T]
    P = torch.zeros(T, C, dtype=torch.float64)
    t = torch.arange(T, dtype=torch.float64)[:, None]
    i = torch.arange(0, C, 2, dtype=torch.float64)
    ang = t / torch.pow(10000.0, i / C)
    P[:, 0::2] = torch.sin(ang)
    P[:, 1::2] = torch.cos(ang[:, : C // 2])
    return P


def build(cfg, w, V):
    m = cfg["model"]
    C, H, F = int(m["d_model"]), int(m["heads"]), int(m["d_ff"])
    Le, Ld = int(m["encoder_layers"]), int(m["decoder_layers"])
    act, nf = m["activation"], m["norm_first"] == "true"
    dec_only = m["kind"] == "decoder_only"
    gen = nn.Linear(C, V).double()
    gen.weight.data = w.get("generator.weight", w["tgt_embed.weight"]).clone()
    gen.bias.data = w["generator.bias"].clone()
    if dec_only:
        layer = nn.TransformerEncoderLayer(C, H, F, 0.0, act, batch_first=True, norm_first=nf)
        net = nn.TransformerEncoder(layer, Ld, norm=nn.LayerNorm(C)).double()
        net.load_state_dict({k[len("decoder."):]: v for k, v in w.items() if k.startswith("decoder.")})
    else:
        net = nn.Transformer(C, H, Le, Ld, F, 0.0, act, batch_first=True, norm_first=nf).double()
        net.load_state_dict({k: v for k, v in w.items() if k.split(".")[0] in ("encoder", "decoder")})
    net.train()  # dropout is 0; training mode avoids the eval fast path (README.md)
    return net, gen


def reference_logp(cfg, w, vocab, src_text, tgt_text):
    m = cfg["model"]
    C = int(m["d_model"])
    s = math.sqrt(C) if m["scale_embeddings"] == "true" else 1.0
    net, gen = build(cfg, w, len(vocab.tokens))
    src, tgt = vocab.encode("src", src_text), vocab.encode("tgt", tgt_text)
    kind = m["positions"]
    with torch.no_grad():
        if m["kind"] == "decoder_only":
            seq = src + [BOS] + tgt
            x = w["tgt_embed.weight"][seq] * s + positions(kind, len(seq), C, w.get("tgt_pos.weight"))
            mask = nn.Transformer.generate_square_subsequent_mask(len(seq)).double()
            h = net(x[None], mask=mask)
            lp = torch.log_softmax(gen(h)[0], -1)
            want = tgt + [EOS]
            return [lp[len(src) + i, y].item() for i, y in enumerate(want)]
        xs = w["src_embed.weight"][src] * s + positions(kind, len(src), C, w.get("src_pos.weight"))
        tin = [BOS] + tgt
        xt = w["tgt_embed.weight"][tin] * s + positions(kind, len(tin), C, w.get("tgt_pos.weight"))
        mem = net.encoder(xs[None])
        mask = nn.Transformer.generate_square_subsequent_mask(len(tin)).double()
        y = net.decoder(xt[None], mem, tgt_mask=mask)
        lp = torch.log_softmax(gen(y)[0], -1)
        return [lp[i, t].item() for i, t in enumerate(tgt + [EOS])]


def tapeformer_logp(binary, path, pairs):
    text = "".join(f"{s}\t{t}\n" for s, t in pairs)
    out = subprocess.run([binary, "score", path], input=text, capture_output=True, text=True, check=True)
    return [[-float(v) for v in line.split("\t")[1].split()] for line in out.stdout.splitlines()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights")
    ap.add_argument("pairs", nargs="?")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    w, meta = read_safetensors(args.weights)
    cfg = configparser.ConfigParser()
    cfg.read_string(meta["config"])
    vocab = Vocab(meta["vocab"])
    if args.pairs:
        pairs = [tuple(l.rstrip("\n").split("\t")) for l in open(args.pairs) if l.strip()]
    else:
        words = vocab.tokens[4:]
        sep = " " if vocab.modes["src"] == "word" else ""
        pick = lambda idx: sep.join(words[i % len(words)] for i in idx)
        pairs = [(pick([0, 1, 2]), pick([0, 1, 2])), (pick([3, 1, 4, 1, 5]), pick([3, 1, 4, 1, 5])),
                 (pick([2, 7]), pick([7, 2])), (pick(range(6)), pick(range(5, -1, -1)))]
    ref = [reference_logp(cfg, w, vocab, s, t) for s, t in pairs]
    worst = 0.0
    for binary in ("build/tapeformer", "build/tapeformer64"):
        got = tapeformer_logp(os.path.join(ROOT, binary), args.weights, pairs)
        diff = max(abs(a - b) for r, g in zip(ref, got) for a, b in zip(r, g))
        assert all(len(r) == len(g) for r, g in zip(ref, got)), "token counts differ"
        print(f"{binary}: {len(pairs)} pairs, {sum(map(len, ref))} tokens, max |log p difference| {diff:.3g}")
        worst = max(worst, diff)
    sys.exit(0 if worst <= args.tol else 1)


if __name__ == "__main__":
    main()
