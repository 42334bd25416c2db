#!/usr/bin/env bash
# Command-level tests of `tapeformer train` and `gradcheck`: config errors,
# learning end to end, bitwise determinism across thread counts, exact resume
# after an interruption, Ctrl-C. Run by tests/run.sh from the repository root.
set -u
. tests/lib.sh

# A small copy task that learns in a few seconds.
tiny=(--set data.symbols=6 --set data.max_len=5 --set model.d_model=32
      --set model.heads=2 --set model.encoder_layers=1 --set model.decoder_layers=1
      --set model.d_ff=64 --set train.batch_size=32 --set train.eval_examples=200
      --set train.target_accuracy=0 --set optim.lr=3e-3 --set optim.warmup=20 --quiet)

# ---- config errors: one line naming file:line and the key, exit code 2 -----
cfg_error() { # cfg_error EXPECTED-SUBSTRING INI-TEXT
    printf '%s\n' "$2" > "$tmp/bad.ini"
    out=$("$TF" train "$tmp/bad.ini" 2>&1 >/dev/null); rc=$?
    [ $rc -eq 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] &&
        [[ "$out" == *"$1"* ]] || { echo "  rc=$rc: $out"; return 1; }
}
check "unknown key names file:line" cfg_error "bad.ini:3: [model] colour: unknown key" $'[model]\nd_model = 32\ncolour = red'
check "bad number names file:line" cfg_error "bad.ini:2: [train] steps" $'[train]\nsteps = ten'
check "heads must divide d_model" cfg_error "bad.ini:3: [model] heads" $'[model]\nd_model = 30\nheads = 4'
check "dropout outside [0,1)" cfg_error "bad.ini:2: [model] dropout" $'[model]\ndropout = 1.5'
check "missing TSV file" cfg_error "train_file" $'[data]\ntask = tsv\ntrain_file = /nonexistent.tsv'
out=$("$TF" train "$tmp/none.ini" 2>&1); rc=$?
check "missing config file: exit 2, names it" test $rc -eq 2 -a -n "$(echo "$out" | grep none.ini)"
out=$("$TF" train configs/copy.ini --set model.heads=x 2>&1); rc=$?
check "--set error names the key" test $rc -eq 2 -a -n "$(echo "$out" | grep -- '--set model.heads')"

# ---- learning: loss falls and accuracy rises --------------------------------
"$TF" train configs/copy.ini "${tiny[@]}" --set train.steps=400 --set train.eval_every=50 \
    --set output.dir="$tmp/learn" > /dev/null
learned() { # learned [METRICS]: loss fell 4x and accuracy rose
    awk -F, 'NR == 2 { l0 = $3 } $6 != "" && NR > 1 { if (a0 == "") a0 = $7; a1 = $7; l1 = $3 }
             END { printf "  loss %s -> %s, accuracy %s -> %s\n", l0, l1, a0, a1;
                   exit !(l1 < l0 / 4 && a1 >= a0 + 0.3 && a1 >= 0.9) }' "${1:-$tmp/learn/metrics.csv}"
}
check "loss falls and accuracy rises" learned

# ---- determinism: same bits for 1, 2 and 4 threads --------------------------
# Twice: a model big enough that products, attention and elementwise ops
# cross the real parallel thresholds, and the small one with the thresholds
# at 1 (TAPEFORMER_PAR_MIN), where every parallel loop of every op runs.
# A small clip_norm makes every step scale by the norm, so its bits count.
big=(--set model.d_model=128 --set model.d_ff=512 --set train.batch_size=64 --set optim.clip_norm=0.05
     --set model.dropout=0.1 --set train.steps=6 --set train.eval_every=1000
     --set train.eval_examples=20 --quiet)
small=(--set data.symbols=6 --set data.max_len=5 --set model.d_model=32 --set model.heads=2
       --set model.d_ff=64 --set train.batch_size=16 --set train.eval_examples=20
       --set model.dropout=0.1 --set train.steps=6 --set train.eval_every=3
       --set train.accumulate=2 --set optim.clip_norm=0.05 --quiet)
for n in 1 2 4; do
    OMP_NUM_THREADS=$n "$TF" train configs/copy.ini "${big[@]}" --set output.dir="$tmp/t$n" > /dev/null
    tensors "$tmp/t$n/checkpoint.safetensors" > "$tmp/t$n.sum"
    OMP_NUM_THREADS=$n TAPEFORMER_PAR_MIN=1,1 "$TF" train configs/reverse-gpt.ini "${small[@]}" \
        --set output.dir="$tmp/s$n" > /dev/null
    tensors "$tmp/s$n/checkpoint.safetensors" > "$tmp/s$n.sum"
    cut -d, -f1-4,6,7 "$tmp/s$n/metrics.csv" > "$tmp/s$n.csv" # losses, norms, validation
done
check "the runs above trained" test -s "$tmp/t1.sum" -a -s "$tmp/s1.sum" -a \
    "$(wc -l < "$tmp/s1.csv")" -ge 3
for n in 2 4; do
    check "weights and moments identical for 1 and $n threads" cmp -s "$tmp/t1.sum" "$tmp/t$n.sum"
    check "every parallel loop split: weights, moments identical for 1 and $n threads" \
        cmp -s "$tmp/s1.sum" "$tmp/s$n.sum"
    check "every parallel loop split: losses and validation identical for 1 and $n threads" \
        cmp -s "$tmp/s1.csv" "$tmp/s$n.csv"
done

# ---- bf16 products: still learns; refused where they cannot run ------------------
if "$TF" train configs/copy.ini --set model.precision=bf16 --set train.steps=1 \
        --set output.dir="$tmp/bfcheck" --quiet 2> "$tmp/bf.err"; then
    "$TF" train configs/copy.ini "${tiny[@]}" --set model.precision=bf16 --set train.steps=400 \
        --set train.eval_every=50 --set train.target_accuracy=0.9 --set output.dir="$tmp/bf16" > /dev/null
    check "precision = bf16: the copy task reaches 90% exact match" \
        test -n "$(awk -F, '$7 >= 0.9' "$tmp/bf16/metrics.csv")"
    check "bf16 checkpoints hold float32 weights" grep -q "F32" <(tensors "$tmp/bf16/checkpoint.safetensors")
else
    check "bf16 refused on this CPU: exit 2 and why" grep -q "no AVX-512 BF16" "$tmp/bf.err"
fi
out=$("$TF64" train configs/copy.ini --set model.precision=bf16 --set output.dir="$tmp/bf64" 2>&1); rc=$?
check "precision = bf16 in the double build: exit 2, one line" \
    test $rc -eq 2 -a "$(echo "$out" | wc -l)" -eq 1 -a -n "$(echo "$out" | grep 'precision = bf16')"

# ---- exact resume: interrupted at 30 and resumed == uninterrupted -----------
res=("${tiny[@]}" --set train.steps=60 --set train.eval_every=25 --set model.dropout=0.1
     --set train.accumulate=2 --set optim.schedule=cosine)
"$TF" train configs/copy.ini "${res[@]}" --set output.dir="$tmp/full" > /dev/null
"$TF" train configs/copy.ini "${res[@]}" --set output.dir="$tmp/part" --stop-at 30 > /dev/null
check "--stop-at leaves a checkpoint at step 30" grep -q '^step 30 ' <(tensors "$tmp/part/checkpoint.safetensors")
"$TF" train configs/copy.ini "${res[@]}" --set output.dir="$tmp/part" --resume > /dev/null
check "resumed run ends bitwise-identical" cmp -s <(tensors "$tmp/full/checkpoint.safetensors") \
    <(tensors "$tmp/part/checkpoint.safetensors")
check "metrics.csv has no duplicated steps after resume" \
    test "$(cut -d, -f1 "$tmp/part/metrics.csv" | sort | uniq -d | wc -l)" -eq 0

# ---- Ctrl-C saves a checkpoint and exits; --resume continues ---------------
"$TF" train configs/copy.ini "${tiny[@]}" --set train.steps=100000 --set train.log_every=1 \
    --set output.dir="$tmp/int" > /dev/null &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/int/metrics.csv" ] && [ "$(wc -l < "$tmp/int/metrics.csv")" -gt 3 ] && break; sleep 0.1; done
kill -INT $pid; wait $pid; rc=$?
check "Ctrl-C exits with 130" test $rc -eq 130
check "Ctrl-C leaves a loadable checkpoint" "$TF" train configs/copy.ini "${tiny[@]}" \
    --set train.steps=100000 --stop-at 1 --set output.dir="$tmp/int" --resume

# ---- user corpora ------------------------------------------------------------
check "configs/roman.tsv is what configs/make-roman-tsv.sh makes" \
    cmp -s configs/roman.tsv <(configs/make-roman-tsv.sh)
# A corpus the project has never seen: made-up words, target = source words
# mapped through a fixed substitution (upper case), whitespace tokens.
awk 'BEGIN { srand(7); split("ka lu mi no pe ri su ta vo xe", w, " ")
             for (i = 0; i < 800; i++) { n = 2 + int(rand() * 4); s = ""; t = ""
               for (j = 0; j < n; j++) { k = 1 + int(rand() * 10); s = s (j ? " " : "") w[k]
                 t = t (j ? " " : "") toupper(w[k]) }
               print s "\t" t } }' > "$tmp/words.tsv"
"$TF" train configs/tsv-example.ini "${tiny[@]}" --set data.train_file="$tmp/words.tsv" \
    --set data.tokenize=word --set train.steps=300 --set train.eval_every=50 \
    --set output.dir="$tmp/words" > /dev/null
check "an unseen TSV corpus trains through the same path" learned "$tmp/words/metrics.csv"

# ---- gradcheck over every op, layer and model ------------------------------
out=$("$TF" gradcheck); rc=$?
echo "$out" | tail -n 1
check "gradcheck passes for every case" test $rc -eq 0
check "gradcheck lists ops, layers and models" test -n "$(echo "$out" | grep -E '^matmul ')" \
    -a -n "$(echo "$out" | grep -E '^attention ')" -a "$(echo "$out" | grep -c pass)" -ge 25
exit $fail
