#!/usr/bin/env bash
# Faults during training: runs killed with SIGKILL at random moments and
# resumed end bitwise-identical to an uninterrupted run; a write that fails
# (file-size limit) reports the error and keeps the previous checkpoint; a
# NaN stops training naming the step (and, with --detect-anomaly, the op).
set -u
. tests/lib.sh

tiny=(--set data.symbols=6 --set data.max_len=5 --set model.d_model=32
      --set model.heads=2 --set model.encoder_layers=1 --set model.decoder_layers=1
      --set model.d_ff=64 --set train.batch_size=32 --set train.eval_examples=50
      --set train.target_accuracy=0 --set optim.lr=3e-3 --set model.dropout=0.1
      --set train.steps=300 --set train.eval_every=100 --set train.checkpoint_every=7 --quiet)

# ---- kill -9 at random moments, resume, repeat ------------------------------
t0=$(date +%s%N)
"$TF" train configs/copy.ini "${tiny[@]}" --set output.dir="$tmp/full" > /dev/null
# Kill each run within a quarter of the uninterrupted run's wall time, so the
# first three rounds cannot finish however fast or slow the machine is today.
full_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kills=0
for round in $(seq 1 100); do
    resume=()
    [ -e "$tmp/k/checkpoint.safetensors" ] && resume=(--resume)
    "$TF" train configs/copy.ini "${tiny[@]}" --set output.dir="$tmp/k" "${resume[@]}" > /dev/null &
    pid=$!
    ms=$(( full_ms * (RANDOM % 76 + 25) / 400 ))
    sleep "$(( ms / 1000 )).$(printf %03d $(( ms % 1000 )))"
    if kill -9 $pid 2> /dev/null; then kills=$((kills + 1)); fi
    wait $pid 2> /dev/null
    if [ -e "$tmp/k/checkpoint.safetensors" ] &&
       tensors "$tmp/k/checkpoint.safetensors" | grep -q '^step 300 '; then break; fi
done
ls "$tmp/k" | grep -q '\.tmp$' && ls -l "$tmp/k"
echo "  $kills kills in $round rounds (an uninterrupted run takes $full_ms ms)"
check "killed $kills times, resumed: weights identical to an uninterrupted run" \
    cmp -s <(tensors "$tmp/full/checkpoint.safetensors") <(tensors "$tmp/k/checkpoint.safetensors")
check "at least 3 runs were killed" test $kills -ge 3

# ---- a failed checkpoint write keeps the previous checkpoint ----------------
"$TF" train configs/copy.ini "${tiny[@]}" --stop-at 14 --set output.dir="$tmp/d" > /dev/null
before=$(tensors "$tmp/d/checkpoint.safetensors")
size=$(stat -c %s "$tmp/d/checkpoint.safetensors")
# A file-size limit below the checkpoint's size: writing it fails with EFBIG.
out=$( (trap '' XFSZ; ulimit -f $(( size / 1024 - 1 )); \
        "$TF" train configs/copy.ini "${tiny[@]}" --set output.dir="$tmp/d" --resume) 2>&1 >/dev/null)
rc=$?
echo "  $out"
check "failed write: exit 1 with a message naming the file" \
    test $rc -eq 1 -a -n "$(echo "$out" | grep 'checkpoint.safetensors.*File too large')"
check "failed write: the previous checkpoint is intact" \
    test "$(tensors "$tmp/d/checkpoint.safetensors")" == "$before"
check "failed write: no temporary file left" test ! -e "$tmp/d/checkpoint.safetensors.tmp"

# ---- NaN: stop naming the step, keep the last good checkpoint ---------------
out=$("$TF" train configs/copy.ini "${tiny[@]}" --set output.dir="$tmp/d" --resume \
      --set optim.lr=1e38 --set optim.clip_norm=0 2>&1 >/dev/null); rc=$?
echo "  $out"
check "NaN: exit 2, the step named" test $rc -eq 2 -a -n "$(echo "$out" | grep -E '^train: step [0-9]+: .* is (NaN|inf)')"
check "NaN: the last good checkpoint is kept" \
    test "$(tensors "$tmp/d/checkpoint.safetensors")" == "$before"
out=$("$TF" train configs/copy.ini "${tiny[@]}" --set output.dir="$tmp/d" --resume \
      --set optim.lr=1e38 --set optim.clip_norm=0 --detect-anomaly 2>&1 >/dev/null)
echo "  $out"
check "--detect-anomaly names the first op" test -n "$(echo "$out" | grep -E "first non-finite value from op '[a-z_]+' \((forward|backward)\)")"
check "the kept checkpoint still resumes" "$TF" train configs/copy.ini "${tiny[@]}" \
    --set output.dir="$tmp/d" --resume --stop-at 16
exit $fail
