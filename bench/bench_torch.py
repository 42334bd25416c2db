"""bench_torch.py: the PyTorch twin of `bench model` (bench/bench.c), same
arguments plus the torch thread count and optionally "bf16" (the forward
pass and loss under torch.autocast("cpu", dtype=torch.bfloat16), as PyTorch
users train in bf16 on a CPU), same model, batch and optimizer, same output
line: "ms t1 t2 ... rss_kb N". Run by bench/run.py."""
import contextlib
import math
import resource
import sys
import time

import torch
from torch import nn


def sinusoids(T, C):
    """[T, C] positional encoding of "Attention Is All You Need", as ours:
    sin on even channels, cos on odd ones, 10000^(2i/C) wavelengths."""
    t = torch.arange(T, dtype=torch.float32)[:, None]
    i = torch.arange(C)[None, :]
    ang = t / torch.pow(10000.0, (i - i % 2).float() / C)
    return torch.where(i % 2 == 1, torch.cos(ang), torch.sin(ang))


def main(a):
    kind, C, H, Le, Ld, F, V, T, B = a[0], *map(int, a[1:9])
    act, nf, pos, tie = a[9], int(a[10]), a[11], int(a[12])
    warmup, steps, threads = int(a[13]), int(a[14]), int(a[15])
    bf16 = len(a) > 16 and a[16] == "bf16"
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    if kind == "gpt":
        layer = nn.TransformerEncoderLayer(C, H, F, 0.0, act, batch_first=True, norm_first=bool(nf))
        body = nn.TransformerEncoder(layer, Ld, norm=nn.LayerNorm(C))
    else:
        body = nn.Transformer(C, H, Le, Ld, F, 0.0, act, batch_first=True, norm_first=bool(nf))
    se, te, gen = nn.Embedding(V, C), nn.Embedding(V, C), nn.Linear(C, V)
    if tie:
        gen.weight = te.weight
    if pos == "learned":
        table = nn.Embedding(T, C)
        posf = lambda: table(torch.arange(T))
        extra = [table]
    else:
        pe = sinusoids(T, C)
        posf = lambda: pe
        extra = []
    mods = nn.ModuleList([body, se, te, gen, *extra])
    mods.train()
    opt = torch.optim.Adam(mods.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    g = torch.Generator().manual_seed(1)
    src = torch.randint(2, V, (B, T), generator=g)
    tgt_in = torch.cat([torch.ones(B, 1, dtype=torch.long), src[:, :-1]], 1)
    pad = torch.zeros(B, T, dtype=torch.bool)  # every length is T, as in bench.c
    causal = torch.triu(torch.full((T, T), float("-inf")), 1)

    def step():
        opt.zero_grad(set_to_none=False)
        with autocast():
            if kind == "gpt":
                y = body(te(tgt_in) + posf(), mask=causal, src_key_padding_mask=pad)
            else:
                y = body(se(src) + posf(), te(tgt_in) + posf(), tgt_mask=causal,
                         src_key_padding_mask=pad, tgt_key_padding_mask=pad,
                         memory_key_padding_mask=pad)
            loss = nn.functional.cross_entropy(gen(y).flatten(0, 1), src.flatten(),
                                               ignore_index=0)
        loss.backward()
        opt.step()
        return loss.item()

    ms = []
    for s in range(-warmup, steps):
        t0 = time.perf_counter()
        loss = step()
        if s >= 0:
            ms.append(1e3 * (time.perf_counter() - t0))
        if not math.isfinite(loss):
            sys.exit(f"bench_torch: loss is {loss}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("ms " + " ".join(f"{t:.3f}" for t in ms) + f" rss_kb {rss}")


if __name__ == "__main__":
    main(sys.argv[1:])
