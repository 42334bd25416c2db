"""copy_torch.py: the PyTorch twin of `tapeformer train CONFIG` for the copy,
reverse and sort tasks, to time training to the target accuracy on the same
recipe (bench/run.py --train). Same model (nn.Transformer, post- or pre-LN,
sinusoidal positions, embeddings scaled by sqrt(d_model), Xavier weights and
zero biases), same data (sequences of 1..symbols, lengths min_len..max_len,
5% held out by a hash of the source), same batches (padded to the longest
in the batch), loss, Adam, warm-up + cosine schedule with a 0.1 floor,
clipping, and the same stopping rule: greedy-decode the held-out examples
every eval_every steps and stop at target_accuracy exact match.
Prints one line: "train seconds S steps N accuracy A".
Usage: copy_torch.py CONFIG THREADS"""
import configparser
import math
import sys
import time
import warnings
import zlib

import torch
from torch import nn

from bench_torch import sinusoids  # this script's folder is on sys.path

PAD, BOS, EOS, FIRST = 0, 1, 2, 4  # symbol k is token FIRST + k - 1


def main(path, threads):
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    cp.read(path)
    m, d, t, o = cp["model"], cp["data"], cp["train"], cp["optim"]
    assert m.get("kind", "encoder_decoder") == "encoder_decoder"
    assert d["task"] in ("copy", "reverse", "sort")
    C, H = m.getint("d_model"), m.getint("heads")
    symbols, lo, hi = d.getint("symbols"), d.getint("min_len"), d.getint("max_len")
    B, steps = t.getint("batch_size"), t.getint("steps")
    eval_every, target = t.getint("eval_every"), t.getfloat("target_accuracy")
    n_eval = t.getint("eval_examples", 500)
    lr, warm = o.getfloat("lr"), o.getint("warmup")
    warnings.filterwarnings("ignore")  # nested tensors "in prototype stage"
    torch.set_num_threads(threads)
    torch.manual_seed(t.getint("seed", 1))
    V = FIRST + symbols

    body = nn.Transformer(C, H, m.getint("encoder_layers"), m.getint("decoder_layers"),
                          m.getint("d_ff"), m.getfloat("dropout"), m.get("activation"),
                          batch_first=True, norm_first=m.getboolean("norm_first"))
    se, te, gen = nn.Embedding(V, C), nn.Embedding(V, C), nn.Linear(C, V)
    model = nn.ModuleList([body, se, te, gen])
    for p in model.parameters():
        nn.init.xavier_uniform_(p) if p.dim() > 1 else None
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(p)
    pe = sinusoids(hi + 1, C)
    scale = math.sqrt(C)

    rng = torch.Generator().manual_seed(d.getint("seed", 1))

    def target_of(s):
        return s[::-1] if d["task"] == "reverse" else sorted(s) if d["task"] == "sort" else s

    def held_out(s):
        return zlib.crc32(" ".join(map(str, s)).encode()) / 2**32 < 0.05

    def sample():
        n = int(torch.randint(lo, hi + 1, (1,), generator=rng))
        return [int(x) for x in torch.randint(1, symbols + 1, (n,), generator=rng)]

    valid, seen = [], set()
    while len(valid) < n_eval:
        s = sample()
        if held_out(s) and tuple(s) not in seen:
            seen.add(tuple(s))
            valid.append(s)

    def pad(rows, width):
        return torch.tensor([r + [PAD] * (width - len(r)) for r in rows])

    def encode(src_rows):
        src = pad([[FIRST + x - 1 for x in s] for s in src_rows], max(map(len, src_rows)))
        smask = src == PAD
        mem = body.encoder(se(src) * scale + pe[: src.shape[1]], src_key_padding_mask=smask)
        return mem, smask

    def decode(mem, smask, tgt_in):
        T = tgt_in.shape[1]
        causal = torch.triu(torch.full((T, T), float("-inf")), 1)
        y = body.decoder(te(tgt_in) * scale + pe[:T], mem, tgt_mask=causal,
                         tgt_key_padding_mask=tgt_in == PAD, memory_key_padding_mask=smask)
        return gen(y)

    def lr_at(step):
        if step <= warm:
            return lr * step / warm
        if step >= steps:
            return 0.1 * lr
        q = (step - warm) / (steps - warm)
        return 0.1 * lr + 0.9 * lr * 0.5 * (1 + math.cos(math.pi * q))

    @torch.no_grad()
    def evaluate():
        model.eval()
        right = 0
        for k in range(0, len(valid), 256):
            rows = valid[k:k + 256]
            mem, smask = encode(rows)
            out = torch.full((len(rows), 1), BOS)
            done = torch.zeros(len(rows), dtype=torch.bool)
            for _ in range(hi + 1):
                nxt = decode(mem, smask, out)[:, -1].argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
                done |= nxt == EOS
                out = torch.cat([out, nxt[:, None]], 1)
                if done.all():
                    break
            for s, o in zip(rows, out[:, 1:].tolist()):
                want = [FIRST + x - 1 for x in target_of(s)] + [EOS]
                right += o[: len(want)] == want
        model.train()
        return right / len(valid)

    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(o.getfloat("beta1"), o.getfloat("beta2")),
                           eps=o.getfloat("eps"))
    clip = o.getfloat("clip_norm")
    t0 = time.perf_counter()
    acc = 0.0
    for step in range(1, steps + 1):
        rows = []
        while len(rows) < B:
            s = sample()
            if not held_out(s):
                rows.append(s)
        tgt = [[FIRST + x - 1 for x in target_of(s)] for s in rows]
        tgt_in = pad([[BOS] + r for r in tgt], max(map(len, tgt)) + 1)
        tgt_out = pad([r + [EOS] for r in tgt], max(map(len, tgt)) + 1)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad()
        mem, smask = encode(rows)
        logits = decode(mem, smask, tgt_in)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(),
                                           ignore_index=PAD)
        loss.backward()
        if clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        if step % eval_every == 0 or step == steps:
            acc = evaluate()
            if acc >= target:
                break
    print(f"train seconds {time.perf_counter() - t0:.2f} steps {step} accuracy {acc:.4f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
