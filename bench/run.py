"""run.py: `make bench`. Times training steps of Tapeformer (build/bench) and
of the identical PyTorch model (bench/bench_torch.py), interleaved process by
process so machine noise hits both alike, at 1 and 2 threads; then matrix
products of the models' shapes against OpenBLAS; then decoding with and
without the key/value cache against the bound that reading every weight once
per step sets. Last, trains the default copy config to its target accuracy
with `tapeformer train` and with the PyTorch twin (bench/copy_torch.py), and
configs/fortunes.ini against nanoGPT's recipe in PyTorch
(bench/nanogpt_torch.py); last, training steps on several processes (MPI)
with a projection to several machines.
Prints seven tables.
Usage: run.py BENCH_BINARY [--quick | --only steps|gemm|decode|copy|fortunes|mpi|precision]"""
import os
import re
import time
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"

# name: kind C H Le Ld F V T B act norm_first positions tie, then warm-up and
# timed steps per process.
CONFIGS = {
    "tiny": ("ed 64 4 2 2 256 16 16 32 relu 0 sinusoidal 0", 5, 30),
    "small": ("ed 128 4 2 2 512 16 16 64 relu 0 sinusoidal 0", 3, 20),
    "base": ("ed 512 8 2 2 2048 1000 64 16 relu 0 sinusoidal 0", 2, 5),
    "gpt": ("gpt 512 8 0 4 2048 512 64 8 gelu 1 learned 1", 2, 8),
}
ROUNDS = 3


def flops_per_step(args):
    """3 × the forward pass's matrix-product FLOPs (2·M·N·K each): backward
    costs two products per forward one (input and weight gradients).
    Elementwise work, softmax and layer norm are not counted."""
    kind, C, H, Le, Ld, F, V, T, B = args[0], *map(int, args[1:9])
    n = B * T                                 # tokens per stack
    attn = 2 * 2 * B * T * T * C              # q·kᵀ and p·v, all heads
    ffn = 2 * n * C * F * 2
    enc = 2 * n * C * 4 * C + attn + ffn      # q, k, v, out projections
    dec = enc + 2 * n * C * 4 * C + attn if kind == "ed" else enc  # + cross-attention
    fwd = (Le * enc if kind == "ed" else 0) + Ld * dec + 2 * n * C * V
    return 3 * fwd


def tokens_per_step(args):
    n = int(args[8]) * int(args[7])
    return 2 * n if args[0] == "ed" else n


def cpu_has_bf16():
    """Whether the CPU has AVX-512 BF16, without which ours refuses bf16 (exit
    2): the bf16 rows and columns are left out then, and say so."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read().split()
    except OSError:
        return False
    return "avx512_bf16" in flags and "avx512bw" in flags


BF16 = cpu_has_bf16()
NO_BF16 = "bf16 left out: this CPU has no AVX-512 BF16"


def env(**kw):
    e = dict(os.environ)
    e.pop("OPENBLAS_CORETYPE", None)  # let OpenBLAS pick its kernels itself
    e.update({k: str(v) for k, v in kw.items()})
    return e


def run(cmd, e):
    out = subprocess.run(cmd, env=e, check=True, capture_output=True, text=True).stdout
    f = out.split()
    assert f[0] == "ms", out
    i = f.index("rss_kb")
    need = int(f[i + 3]) if "need_kb" in f else 0
    return [float(x) for x in f[1:i]], (int(f[i + 1]), need)


def bench_model(binary, name, threads, bf16=False):
    """Median ms/step of ours and of PyTorch at its best thread setting, that
    setting, and peak RSS; bf16: ours with every product in bf16
    (TAPEFORMER_BF16=1), PyTorch under bf16 autocast."""
    spec, warm, steps = CONFIGS[name]
    args = spec.split()
    ours, torch = [], {}
    rss = [0, 0, 0]
    # PyTorch's thread settings: intra-op threads × OpenBLAS threads, and
    # whether its OpenMP threads are bound to CPUs as ours are.
    torch_settings = [(1, 1, 0)] if threads == 1 else [(1, 2, 0), (2, 1, 0), (2, 1, 1)]
    for _ in range(ROUNDS):
        t, r = run([binary, "model", *args, str(warm), str(steps)],
                   env(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=1,
                       TAPEFORMER_BF16=int(bf16)))
        ours += t
        rss[0], rss[2] = max(rss[0], r[0]), r[1]
        for tt, bt, bind in torch_settings:
            e = env(OPENBLAS_NUM_THREADS=bt, OMP_NUM_THREADS=tt)
            if bind:
                e["OMP_PROC_BIND"] = "close"
            t, r = run([PY, os.path.join(HERE, "bench_torch.py"), *args, str(warm),
                        str(steps), str(tt), *(["bf16"] if bf16 else [])], e)
            torch.setdefault((tt, bt, bind), []).extend(t)
            rss[1] = max(rss[1], r[0])
    best = min(torch, key=lambda k: statistics.median(torch[k]))
    return statistics.median(ours), statistics.median(torch[best]), best, rss


GEMM_SHAPES = [  # M N K ta tb: what the models run (Linear is x·Wᵀ: tb = 1)
    ("tiny linear", "512 64 64 0 1"),
    ("tiny ffn1", "512 256 64 0 1"),
    ("tiny dW", "256 64 512 1 0"),
    ("base qkv", "1024 512 512 0 1"),
    ("base ffn1", "1024 2048 512 0 1"),
    ("base ffn2", "1024 512 2048 0 1"),
    ("base dX ffn1", "1024 512 2048 0 0"),
    ("base dW ffn1", "2048 512 1024 1 0"),
    ("base generator", "1024 1000 512 0 1"),
    ("gpt attention", "64 64 64 0 1"),
    ("square 1024", "1024 1024 1024 0 0"),
]


def main():
    binary = sys.argv[1]
    quick = "--quick" in sys.argv
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    sections = [("steps", lambda: bench_steps(binary, quick)), ("gemm", lambda: bench_gemm(binary)),
                ("decode", lambda: bench_decode(binary))]
    if not quick:
        sections += [("copy", lambda: bench_train(binary, os.path.join(HERE, "..", "configs",
                                                                       "copy.ini"))),
                     ("fortunes", lambda: bench_nanogpt(binary)), ("mpi", lambda: bench_mpi(binary)),
                     ("precision", lambda: bench_precision(binary))]
    for i, (name, section) in enumerate(s for s in sections if only in (None, s[0])):
        if i:
            print()
        section()


def bench_steps(binary, quick):
    names = ["tiny", "small"] if quick else list(CONFIGS)
    print("Training steps (copy task, dropout 0, Adam); median ms/step over "
          f"{ROUNDS} interleaved processes each")
    print("GFLOP/s counts 3x the forward matmul FLOPs; tokens = source + target tokens;")
    print("RSS/need: our peak resident set over parameters + gradients + Adam state + arena;")
    print("bf16: ours with every product in bf16, PyTorch under bf16 autocast (2 threads)"
          if BF16 else NO_BF16)
    print(f"{'config':6} {'prec':>4} {'thr':>3} {'ours ms':>9} {'torch ms':>9} {'ratio':>6} "
          f"{'ours tok/s':>11} {'torch tok/s':>11} {'ours GF/s':>9} {'torch GF/s':>10} "
          f"{'ours MB':>8} {'torch MB':>8} {'RSS/need':>8}  torch threads (intra-op x OpenBLAS)")
    for name in names:
        args = CONFIGS[name][0].split()
        fl, tok = flops_per_step(args), tokens_per_step(args)
        one = None
        for threads, bf16 in ((1, False), (2, False)) + (((2, True),) if BF16 else ()):
            ours, torch, best, rss = bench_model(binary, name, threads, bf16)
            if bf16:
                speed = f"  ours bf16 vs float32: {two / ours:.2f}x faster"
            else:
                speed = f"  2t/1t: ours {one[0] / ours:.2f}x torch {one[1] / torch:.2f}x" if one else ""
                one, two = one or (ours, torch), ours
            print(f"{name:6} {'bf16' if bf16 else 'fp32':>4} {threads:3} {ours:9.2f} {torch:9.2f} "
                  f"{ours / torch:6.2f} {tok / ours * 1e3:11.0f} {tok / torch * 1e3:11.0f} "
                  f"{fl / ours / 1e6:9.1f} {fl / torch / 1e6:10.1f} "
                  f"{rss[0] / 1024:8.1f} {rss[1] / 1024:8.1f} {rss[0] / rss[2]:8.2f}  {best[0]}x{best[1]}"
                  f"{' bound' if best[2] else ''}{speed}",
                  flush=True)


def bench_gemm(binary):
    """Our products in float32 against OpenBLAS's sgemm, and in bf16; both
    against the machine's peak at the same thread count (bench peak:
    register-only chains of vfmadd231ps and vdpbf16ps on every thread)."""
    peak = {}
    for threads in (1, 2):
        out = subprocess.run([binary, "peak"], check=True, capture_output=True, text=True,
                             env=env(OMP_NUM_THREADS=threads)).stdout.split()
        peak[threads] = float(out[1]), float(out[2])
    print("Matrix products C = op(A)·op(B), median ms of 20; OpenBLAS sgemm at the same threads;")
    if not BF16:
        print(NO_BF16 + " (its columns: nan)")
    print("peak: register-only multiply-add loops, float32 FMA "
          f"{peak[1][0]:.0f} / {peak[2][0]:.0f} GF/s and bf16 dot {peak[1][1]:.0f} / "
          f"{peak[2][1]:.0f} GF/s at 1 / 2 threads")
    print(f"{'shape':16} {'M N K ta tb':>22} {'thr':>3} {'ours ms':>9} {'blas ms':>9} "
          f"{'ours GF/s':>9} {'blas GF/s':>9} {'ours/blas':>9} {'of peak':>7} "
          f"{'bf16 ms':>8} {'bf16 GF/s':>9} {'of peak':>7}")
    for label, shape in GEMM_SHAPES:
        M, N, K = map(int, shape.split()[:3])
        for threads in (1, 2):
            res = []
            for bf16 in (0, 1):
                if bf16 and not BF16:
                    res.append((float("nan"), float("nan")))
                    continue
                out = subprocess.run([binary, "gemm", *shape.split(), "20"], check=True,
                                     capture_output=True, text=True,
                                     env=env(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
                                             TAPEFORMER_BF16=bf16)).stdout.split()
                res.append((float(out[1]), float(out[2])))
            (ours, blas), (bf, _) = res
            gf = 2 * M * N * K / 1e6
            print(f"{label:16} {shape:>22} {threads:3} {ours:9.3f} {blas:9.3f} "
                  f"{gf / ours:9.1f} {gf / blas:9.1f} {blas / ours:8.0%} "
                  f"{gf / ours / peak[threads][0]:7.0%} {bf:8.3f} {gf / bf:9.1f} "
                  f"{gf / bf / peak[threads][1] if BF16 else float('nan'):7.0%}", flush=True)


def bench_train(binary, config):
    """Wall time to the config's target accuracy: ours at 2 threads, PyTorch
    at its faster of 1 and 2 intra-op threads (OpenBLAS on one)."""
    print(f"Training {os.path.basename(config)} to its target accuracy (validation every 250 steps)")
    print(f"{'':18} {'seconds':>8} {'steps':>6} {'accuracy':>9}")
    tapeformer = os.path.join(os.path.dirname(binary), "tapeformer")
    out_dir = os.path.join(os.path.dirname(binary), "bench-train")
    t0 = time.perf_counter()
    out = subprocess.run([tapeformer, "train", config, "--set", f"output.dir={out_dir}"],
                         env=env(OMP_NUM_THREADS=2), check=True, capture_output=True,
                         text=True).stdout
    ours = time.perf_counter() - t0
    step = int(re.findall(r"^done: step (\d+)", out, re.M)[-1])
    acc = float(re.findall(r"exact match ([0-9.]+)%", out)[-1]) / 100
    print(f"{'ours':18} {ours:8.1f} {step:6} {acc:9.1%}", flush=True)
    best = None
    for threads in (1, 2):
        out = subprocess.run([PY, os.path.join(HERE, "copy_torch.py"), config, str(threads)],
                             env=env(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=1),
                             check=True, capture_output=True, text=True).stdout.split()
        secs, steps, acc = float(out[2]), int(out[4]), float(out[6])
        print(f"{f'torch, {threads} thread(s)':18} {secs:8.1f} {steps:6} {acc:9.1%}", flush=True)
        best = min(best or secs, secs)
    print(f"ours / best torch: {ours / best:.2f}")


DECODE = {  # shape as CONFIGS (T: source or prompt tokens x 2), sources, tokens each
    "base": ("ed 512 8 2 2 2048 1000 32 16 relu 0 sinusoidal 0", 64),
    "gpt": ("gpt 512 8 0 4 2048 512 64 16 gelu 1 learned 1", 64),
}


def bench_decode(binary):
    """Greedy decoding tokens/s, with and without the cache, against the bound
    B × bandwidth / (weight bytes a step reads), at 2 threads."""
    e = env(OMP_NUM_THREADS=2)
    out = subprocess.run([binary, "stream", "512", "5"], env=e, check=True,
                         capture_output=True, text=True).stdout.split()
    i = out.index("bytes")
    gbs = int(out[i + 1]) / statistics.median(map(float, out[2:i])) / 1e6
    print(f"Greedy decoding, 2 threads, median of 3; memory read at {gbs:.1f} GB/s (2 threads);")
    print("bound: every weight read once per step (decoder, generator; cross-attention keys and")
    print("values are projected once per source)")
    print(f"{'model':6} {'sources':>7} {'tokens':>6} {'cache tok/s':>11} {'no cache tok/s':>14} "
          f"{'cache/no':>8} {'bound tok/s':>11} {'of bound':>8}")
    for name, (spec, length) in DECODE.items():
        args = spec.split()
        tok = {}
        for cache in (1, 0):
            out = subprocess.run([binary, "decode", *args, str(length), str(cache), "3"], env=e,
                                 check=True, capture_output=True, text=True).stdout.split()
            i = out.index("tokens")
            tok[cache] = int(out[i + 1]) / statistics.median(map(float, out[2:i])) * 1e3
            weights = float(out[i + 3])
        bound = int(args[8]) * gbs * 1e9 / weights
        print(f"{name:6} {args[8]:>7} {length:6} {tok[1]:11.0f} {tok[0]:14.0f} {tok[1] / tok[0]:7.1f}x "
              f"{bound:11.0f} {tok[1] / bound:8.0%}", flush=True)


def bench_nanogpt(binary):
    """configs/fortunes.ini (nanoGPT's CPU baby GPT on the fortunes corpus)
    against the recipe in PyTorch: validation loss on the same 1000 windows
    and wall time, alternating processes, ours at 2 threads and PyTorch at
    the faster of its two-core thread settings (TWIN_SETTINGS)."""
    tapeformer = os.path.join(os.path.dirname(binary), "tapeformer")
    config = os.path.join(HERE, "..", "configs", "fortunes.ini")
    corpus = os.path.join(HERE, "..", "build", "corpora", "fortunes.txt")
    out_dir = os.path.join(os.path.dirname(binary), "bench-fortunes")
    # the twin's final loss windows, val[64k : 64k+65] for k < 1000 (val: the
    # code points from n*9//10 on, as both split), as a text file `eval --data`
    # reads window by window
    with open(corpus, encoding="utf-8", newline="") as f:
        text = f.read()
    windows = os.path.join(out_dir, "valid-1000-windows.txt")
    os.makedirs(out_dir, exist_ok=True)
    with open(windows, "w", encoding="utf-8", newline="") as f:
        f.write(text[len(text) * 9 // 10:][:1000 * 64 + 1])
    # PyTorch's best thread setting differs between machines (intra-op
    # threads × OpenBLAS threads; on an AVX2 machine 1 × 2 beat 2 × 1, on an
    # AVX-512 one the reverse): one 300-step run of each, the faster kept
    probe = {}
    for tt, bt in TWIN_SETTINGS:
        out = subprocess.run([PY, os.path.join(HERE, "nanogpt_torch.py"), corpus, str(tt), "300"],
                             env=env(OMP_NUM_THREADS=tt, OPENBLAS_NUM_THREADS=bt), check=True,
                             capture_output=True, text=True).stdout.split()
        probe[tt, bt] = float(out[2])
    tt, bt = min(probe, key=probe.get)
    print("PyTorch's thread settings, 300 steps each: " +
          ", ".join(f"{a} intra-op x {b} OpenBLAS {v:.1f} s" for (a, b), v in probe.items()) +
          f"; runs with {tt} x {bt}")
    print("nanoGPT's CPU baby GPT recipe on the fortunes corpus, 2000 steps; wall time includes")
    print("the periodic validations (480 windows each, as many as nanoGPT's 20 + 20 batches of")
    print("12); the final validation loss, untimed for both, on the first 1000 windows of 64 of")
    print(f"the last 10%; {LM_ROUNDS} alternating runs each")
    ours, torch = [], []
    for _ in range(LM_ROUNDS):
        t0 = time.perf_counter()
        subprocess.run([tapeformer, "train", config, "--set", f"output.dir={out_dir}", "--quiet"],
                       env=env(OMP_NUM_THREADS=2), check=True)
        secs = time.perf_counter() - t0
        out = subprocess.run([tapeformer, "eval", os.path.join(out_dir, "checkpoint.safetensors"),
                              "--data", windows], env=env(OMP_NUM_THREADS=2), check=True,
                             capture_output=True, text=True).stdout.split()
        ours.append((secs, float(out[1])))
        out = subprocess.run([PY, os.path.join(HERE, "nanogpt_torch.py"), corpus, str(tt), "2000",
                              "1000"],
                             env=env(OMP_NUM_THREADS=tt, OPENBLAS_NUM_THREADS=bt), check=True,
                             capture_output=True, text=True).stdout.split()
        torch.append((float(out[2]), float(out[6])))
        print(f"  ours {ours[-1][0]:.1f} s, loss {ours[-1][1]:.4f}; "
              f"torch {torch[-1][0]:.1f} s, loss {torch[-1][1]:.4f}", flush=True)
    med = lambda v, k: statistics.median(x[k] for x in v)
    spread = lambda v: f"{min(x[0] for x in v):.1f}-{max(x[0] for x in v):.1f}"
    print(f"{'':8} {'seconds':>8} {'spread':>12} {'val loss':>9}")
    print(f"{'ours':8} {med(ours, 0):8.1f} {spread(ours):>12} {med(ours, 1):9.4f}")
    print(f"{'torch':8} {med(torch, 0):8.1f} {spread(torch):>12} {med(torch, 1):9.4f}")
    print(f"ours / torch: time {med(ours, 0) / med(torch, 0):.2f}, "
          f"loss {med(ours, 1) - med(torch, 1):+.4f}")


LM_ROUNDS = 5
TWIN_SETTINGS = [(2, 1), (1, 2)]  # PyTorch intra-op threads, OpenBLAS threads

SHIPPED = ["copy", "reverse", "sort", "numbers-en", "numbers-zh", "tsv-example", "reverse-gpt",
           "fortunes", "tang"]


def bench_precision(binary):
    """Every shipped config trained as shipped in float32 and in bf16
    ([model] precision = bf16), one after the other at 2 threads: the step
    it stopped at (its target reached, or its last), wall time, and the last
    validation (exact match, or for text the loss and bits per character)."""
    tapeformer = os.path.join(os.path.dirname(binary), "tapeformer")
    print("Shipped configs in float32 and bf16, 2 threads: stopping step, seconds, last validation")
    if not BF16:
        print(NO_BF16)
    print(f"{'config':12} {'fp32 step':>9} {'s':>6} {'validation':>18} {'bf16 step':>9} {'s':>6} "
          f"{'validation':>18}")
    for name in SHIPPED:
        row = []
        for prec in ("float32", "bf16") if BF16 else ("float32",):
            out_dir = os.path.join(os.path.dirname(binary), f"bench-{name}-{prec}")
            t0 = time.perf_counter()
            out = subprocess.run([tapeformer, "train", os.path.join(HERE, "..", "configs", f"{name}.ini"),
                                  "--set", f"model.precision={prec}", "--set", f"output.dir={out_dir}",
                                  "--examples", "0"],
                                 env=env(OMP_NUM_THREADS=2), check=True, capture_output=True,
                                 text=True).stdout
            secs = time.perf_counter() - t0
            step = int(re.findall(r"^done: step (\d+)", out, re.M)[-1])
            acc = re.findall(r"exact match ([0-9.]+)%", out)
            bpc = re.findall(r"loss ([0-9.]+)  ([0-9.]+) bits/char", out)
            val = f"{acc[-1]}%" if acc else f"{bpc[-1][0]} / {bpc[-1][1]} bpc"
            row.append(f"{step:9} {secs:6.1f} {val:>18}")
        print(f"{name:12} {' '.join(row)}", flush=True)

# The bench's base and gpt shapes as training configs: a step is 2
# micro-batches (accumulate) whose sequences add up to the bench's batch.
MPI_CONFIGS = {
    "base": ["configs/copy.ini", "model.d_model=512", "model.heads=8", "model.d_ff=2048",
             "data.symbols=200", "data.min_len=64", "data.max_len=64", "train.batch_size=8"],
    "gpt": ["configs/reverse-gpt.ini", "model.d_model=512", "model.heads=8", "model.d_ff=2048",
            "model.decoder_layers=4", "data.symbols=200", "data.min_len=32", "data.max_len=32",
            "train.batch_size=4"],
}
MPI_LAYOUTS = [(1, 2), (1, 1), (2, 1), (2, 2)]  # processes x threads
MPI_ROUNDS = 3


def train_times(binary, name, procs, threads):
    """Median ms of a step, of its optimizer update and of its exchange,
    and the parameter count, from `tapeformer train`'s closing lines."""
    tapeformer = os.path.join(os.path.dirname(binary), "tapeformer")
    config, *keys = MPI_CONFIGS[name]
    keys += ["train.accumulate=2", "train.steps=10", "train.eval_examples=8",
             "train.eval_every=1000", "train.checkpoint_every=0",
             f"output.dir={os.path.dirname(binary)}/bench-mpi"]
    cmd = [tapeformer, "train", os.path.join(HERE, "..", config), "--examples", "0"]
    for k in keys:
        cmd += ["--set", k]
    if procs > 1:  # 2 x 2 oversubscribes the 2 cores: no binding then
        cmd = ["mpirun", "-np", str(procs), "--bind-to", "core" if procs * threads <= 2 else "none",
               *cmd]
    out = subprocess.run(cmd, env=env(OMP_NUM_THREADS=threads, OMPI_ALLOW_RUN_AS_ROOT=1,
                                      OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1,
                                      OMPI_MCA_rmaps_base_oversubscribe=1),
                         check=True, capture_output=True, text=True).stdout
    step, adam = map(float, re.search(r"median step ([0-9.]+) ms, optimizer ([0-9.]+) ms", out).groups())
    comm = re.search(r"exchanging gradients and weights ([0-9.]+) ms", out)
    params = int(re.search(r"(\d+) parameters", out).group(1))
    return step, adam, float(comm.group(1)) if comm else 0.0, params


def bench_mpi(binary):
    """Training steps of the base and gpt shapes on 1 process x 2 threads, 2 x 1
    and 2 x 2 (mpirun on this machine), interleaved; then what the measured
    compute time and the exchanged bytes project for several machines."""
    print(f"Training on several processes (mpirun, shared memory): a step of 2 micro-batches,")
    print(f"median ms over {MPI_ROUNDS} interleaved runs of 10 steps (spread of the runs' medians);")
    print("exchange: all-to-all of gradient slices and all-gather of weights, rank 0's wait included")
    print(f"{'config':6} {'layout':>6} {'step ms':>8} {'spread':>13} {'Adam ms':>8} "
          f"{'exchange ms':>11} {'vs 1x2':>7}")
    compute = {}
    for name in MPI_CONFIGS:
        runs = {lay: [] for lay in MPI_LAYOUTS}
        for _ in range(MPI_ROUNDS):
            for lay in MPI_LAYOUTS:
                runs[lay].append(train_times(binary, name, *lay))
        med = {lay: [statistics.median(r[i] for r in runs[lay]) for i in range(3)]
               for lay in MPI_LAYOUTS}
        for lay in MPI_LAYOUTS:
            step = [r[0] for r in runs[lay]]
            print(f"{name:6} {lay[0]}x{lay[1]:<4} {med[lay][0]:8.1f} "
                  f"{f'{min(step):.0f}-{max(step):.0f}':>13} {med[lay][1]:8.1f} "
                  f"{med[lay][2]:11.1f} {med[lay][0] / med[(1, 2)][0]:7.2f}", flush=True)
        compute[name] = (med[(1, 2)][0] / 2, runs[(1, 2)][0][3])
    print()
    print("Projection to M machines like this one (2 threads each), accumulate = M: each machine")
    print("computes one micro-batch (half the measured 1x2 step), then sends and receives")
    print("(M-1)/M of the gradient (4 bytes x P parameters) and of the weights:")
    print("  step(M) = compute + 8 P (M-1)/M / bandwidth; efficiency = compute / step(M)")
    print("(full-duplex links through a non-blocking switch; no latency term, no overlap)")
    machines = [2, 4, 8, 16, 32, 64]
    print(f"{'config':6} {'Gbit/s':>6} {'8P MB':>8} " + " ".join(f"{m:>6}" for m in machines))
    for name, (c_ms, P) in compute.items():
        for gbit in (10, 25, 100):
            eff = []
            for m in machines:
                comm_ms = 8 * P * (m - 1) / m / (gbit * 1e9 / 8) * 1e3
                eff.append(c_ms / (c_ms + comm_ms))
            print(f"{name:6} {gbit:6} {8 * P / 1e6:8.1f} " + " ".join(f"{e:6.0%}" for e in eff))
        print(f"{name:6} compute per micro-batch {c_ms:.0f} ms, {P} parameters")

if __name__ == "__main__":
    main()
