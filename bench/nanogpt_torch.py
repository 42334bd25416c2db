"""nanogpt_torch.py: a PyTorch twin of nanoGPT's CPU "baby GPT" recipe
(config/train_shakespeare_char.py with its CPU overrides) on a character-level
corpus, so its wall time and validation loss can be compared with our C
trainer. Written from the recipe's description, not from nanoGPT's source.

Usage: /usr/bin/python3 bench/nanogpt_torch.py CORPUS THREADS [STEPS] [VALID_WINDOWS] [PRECISION]
Prints the periodic evaluations on stderr ("step IT: train L, val L") and one
line on stdout: "train seconds S steps N val_loss L bpc B params P".

Settings:
- data: CORPUS read whole as UTF-8 text; vocabulary = sorted set of its
  characters, id = index; train = first n*9//10 ids, val = the rest.
- model: GPT, n_layer 4, n_head 4, n_embd 128, block_size 64, dropout 0,
  bias=False (LayerNorm has a weight only, eps 1e-5; Linears have no bias),
  learned positions, pre-LN blocks, causal softmax attention, exact GELU MLP
  of width 512, final LayerNorm, lm_head tied to the token embedding.
- init: Linear/Embedding weights N(0, 0.02), c_proj weights
  N(0, 0.02/sqrt(2*n_layer)), LayerNorm weights 1; torch.manual_seed(1337).
- optimizer: AdamW lr 1e-3, betas (0.9, 0.99), eps 1e-8, weight decay 0.1 on
  parameters with dim >= 2 and 0 on the rest; gradients clipped to norm 1.
- schedule: linear warm-up over 100 iterations, cosine decay to 1e-4 at
  iteration STEPS (default 2000), STEPS optimizer steps (it = 0..STEPS-1).
- batches: 12 random windows of 64 from train (Generator seeded 1337).
- evaluation (timed, as nanoGPT does): at it % 250 == 0 but not before the
  first step, and at the end (8 in 2000 steps, as our trainer validates;
  nanoGPT also evaluates at it 0), mean loss of 20 random train and 20
  random val batches (Generator seeded 2024).
- precision: float32 (default, nanoGPT's CPU setting) or bf16: the forward
  passes and losses under torch.autocast("cpu", dtype=torch.bfloat16), as
  nanoGPT does on GPUs; the weights and AdamW stay float32.
- train seconds: from the start of the loop to the end of the last evaluation.
- val_loss (untimed): mean cross-entropy over the targets of the fixed
  windows val[64k : 64k+65], k < VALID_WINDOWS (default 1000, capped at
  (len(val)-1)//64), comparable with our trainer; bpc = val_loss / ln 2.
- params: number of parameters, the tied embedding counted once."""
import contextlib
import math
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

N_LAYER, N_HEAD, N_EMBD, BLOCK = 4, 4, 128, 64
BATCH, LR, MIN_LR, WARMUP = 12, 1e-3, 1e-4, 100
EVAL_INTERVAL, EVAL_ITERS = 250, 20


class LayerNorm(nn.Module):
    """LayerNorm with a weight and no bias (torch 1.13's has no bias=False)."""

    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = nn.Linear(N_EMBD, 3 * N_EMBD, bias=False)
        self.c_proj = nn.Linear(N_EMBD, N_EMBD, bias=False)
        # a buffer, not a parameter: it is not trained and not counted
        self.register_buffer("causal", torch.tril(torch.ones(BLOCK, BLOCK, dtype=torch.bool)))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(N_EMBD, dim=2)
        # [B, T, C] -> [B, heads, T, head_dim]
        q, k, v = (t.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // N_HEAD))
        att = att.masked_fill(~self.causal[:T, :T], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc = nn.Linear(N_EMBD, 4 * N_EMBD, bias=False)
        self.gelu = nn.GELU()  # exact (erf) GELU, as nanoGPT
        self.c_proj = nn.Linear(4 * N_EMBD, N_EMBD, bias=False)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.attn = LayerNorm(N_EMBD), SelfAttention()
        self.ln_2, self.mlp = LayerNorm(N_EMBD), MLP()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab, N_EMBD),
            wpe=nn.Embedding(BLOCK, N_EMBD),
            h=nn.ModuleList([Block() for _ in range(N_LAYER)]),
            ln_f=LayerNorm(N_EMBD)))
        self.lm_head = nn.Linear(N_EMBD, vocab, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied, one parameter
        self.apply(self._init_weights)
        # scaled init of the residual projections, per GPT-2
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * N_LAYER))

    @staticmethod
    def _init_weights(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx):
        t = self.transformer
        x = t.wte(idx) + t.wpe(torch.arange(idx.shape[1]))
        for block in t.h:
            x = block(x)
        return self.lm_head(t.ln_f(x))


def load(path):
    """Ids of the whole corpus and the vocabulary size."""
    # newline="" keeps every code point (no \r\n folding), like a byte reader
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    return torch.tensor([index[c] for c in text], dtype=torch.long), len(chars)


def get_batch(data, gen):
    """BATCH random windows of BLOCK inputs and their next-character targets."""
    ix = torch.randint(len(data) - BLOCK, (BATCH,), generator=gen)
    x = torch.stack([data[i:i + BLOCK] for i in ix])
    y = torch.stack([data[i + 1:i + 1 + BLOCK] for i in ix])
    return x, y


def loss_of(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))


def lr_at(it, decay_iters):
    """nanoGPT's get_lr: linear warm-up, then cosine down to MIN_LR."""
    if it < WARMUP:
        return LR * (it + 1) / (WARMUP + 1)
    if it > decay_iters:
        return MIN_LR
    ratio = (it - WARMUP) / (decay_iters - WARMUP)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LR - MIN_LR)


def make_optimizer(model):
    """AdamW decaying matrices (and embeddings) only, not gains."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=LR, betas=(0.9, 0.99), eps=1e-8)


@torch.no_grad()
def estimate_loss(model, splits, gen):
    """Mean loss over EVAL_ITERS random batches of each split."""
    model.eval()
    out = [sum(loss_of(model, *get_batch(d, gen)).item() for _ in range(EVAL_ITERS)) / EVAL_ITERS
           for d in splits]
    model.train()
    return out


def report(model, it, splits, gen):
    tl, vl = estimate_loss(model, splits, gen)
    print(f"step {it}: train {tl:.4f}, val {vl:.4f}", file=sys.stderr, flush=True)


@torch.no_grad()
def fixed_valid_loss(model, val, windows):
    """Mean loss over the targets of windows val[64k : 64k+65], k < windows."""
    model.eval()
    x = val[:windows * BLOCK].view(windows, BLOCK)
    y = val[1:windows * BLOCK + 1].view(windows, BLOCK)
    total = 0.0
    for k in range(0, windows, 128):
        logits = model(x[k:k + 128])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[k:k + 128].reshape(-1),
                                 reduction="sum").item()
    return total / (windows * BLOCK)


def main(path, threads, steps=2000, valid_windows=1000, precision="float32"):
    if precision not in ("float32", "bf16"):
        sys.exit(__doc__)
    torch.set_num_threads(threads)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" \
        else contextlib.nullcontext
    data, vocab = load(path)
    n = len(data)
    train, val = data[:n * 9 // 10], data[n * 9 // 10:]
    windows = min(valid_windows, (len(val) - 1) // BLOCK)
    torch.manual_seed(1337)
    model = GPT(vocab)
    opt = make_optimizer(model)
    batch_gen = torch.Generator().manual_seed(1337)
    eval_gen = torch.Generator().manual_seed(2024)

    t0 = time.perf_counter()
    for it in range(steps):
        lr = lr_at(it, steps)
        for g in opt.param_groups:
            g["lr"] = lr
        if it and it % EVAL_INTERVAL == 0:
            with autocast():
                report(model, it, (train, val), eval_gen)
        with autocast():
            loss = loss_of(model, *get_batch(train, batch_gen))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    with autocast():
        report(model, steps, (train, val), eval_gen)  # nanoGPT's eval at iter max_iters
    seconds = time.perf_counter() - t0

    with autocast():
        vl = fixed_valid_loss(model, val, windows)
    n_params = sum(p.numel() for p in model.parameters())  # parameters() dedups the tie
    print(f"train seconds {seconds:.1f} steps {steps} val_loss {vl:.4f} "
          f"bpc {vl / math.log(2):.4f} params {n_params}")


if __name__ == "__main__":
    if not 3 <= len(sys.argv) <= 6:
        sys.exit(__doc__)
    main(sys.argv[1], *(int(a) for a in sys.argv[2:5]), *sys.argv[5:])
