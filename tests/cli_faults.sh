#!/usr/bin/env bash
# Faults during training: runs killed with SIGKILL at fixed steps and inside
# checkpoint writes, resumed, end bitwise-identical to an uninterrupted run;
# a second run on the same directory is refused; a model too big for the
# memory is refused before it is allocated; a write that fails
# (file-size limit) reports the error and keeps the previous checkpoint; a
# NaN stops training naming the step (and, with --detect-anomaly, the op).
set -u
. tests/lib.sh

tiny=(--set data.symbols=6 --set data.max_len=5 --set model.d_model=32
      --set model.heads=2 --set model.encoder_layers=1 --set model.decoder_layers=1
      --set model.d_ff=64 --set train.batch_size=32 --set train.eval_examples=50
      --set train.target_accuracy=0 --set optim.lr=3e-3 --set model.dropout=0.1
      --set train.steps=300 --set train.eval_every=100 --set train.checkpoint_every=7 --quiet)

# ---- killed at fixed points, resumed each time --------------------------------
# The hidden option --kill-at STEP sends the run SIGKILL at the start of STEP,
# --kill-at STEP:write halfway through writing that step's checkpoint; so the
# kills fall where they are meant to on any machine, fast or slow. Checkpoints
# every 7 steps: each kill must leave the one of the last multiple of 7 below
# STEP, whole (a write killed leaves its .tmp), and the runs resumed from
# them must end bitwise-identical to an uninterrupted run.
"$TF" train configs/copy.ini "${tiny[@]}" --set output.dir="$tmp/full" > /dev/null
killed_ok=1
for at in 5 7:write 9 14 15 21:write 22 70:write 71 150 298 300:write; do
    resume=()
    [ -e "$tmp/k/checkpoint.safetensors" ] && resume=(--resume)
    # (in a shell of its own, which reports "Killed" to /dev/null)
    rc=$(bash -c '"$@" > /dev/null 2>&1; echo $?' _ "$TF" train configs/copy.ini "${tiny[@]}" \
         --set output.dir="$tmp/k" "${resume[@]}" --kill-at "$at" 2> /dev/null)
    step=${at%:write}
    last=$(( (step - 1) / 7 * 7 ))
    got=$( [ -e "$tmp/k/checkpoint.safetensors" ] && tensors "$tmp/k/checkpoint.safetensors" | awk '/^step/ { print $2 }')
    if [ $rc -ne 137 ] || [ "${got:-0}" != "$last" ] ||
       { [ "$at" != "${at%:write}" ] && [ ! -s "$tmp/k/checkpoint.safetensors.tmp" ]; }; then
        echo "  --kill-at $at: exit $rc, checkpoint at step ${got:-none}, expected 137 and $last"
        killed_ok=0
    fi
done
check "12 runs killed at their step or inside a checkpoint write, each leaving the last whole checkpoint" \
    test $killed_ok -eq 1
"$TF" train configs/copy.ini "${tiny[@]}" --set output.dir="$tmp/k" --resume > /dev/null
check "killed 12 times and resumed: weights identical to an uninterrupted run" \
    cmp -s <(tensors "$tmp/full/checkpoint.safetensors") <(tensors "$tmp/k/checkpoint.safetensors")
check "no temporary file or lock left behind" test -z "$(ls "$tmp/k" | grep -E '\.tmp$|lock')"

# ---- one run per output directory ------------------------------------------------
# This shell takes the run's lock itself (flock(1) and the trainer use the
# same flock(2) lock), so a second run meets it without any race or timing.
mkdir -p "$tmp/busy"
exec 9> "$tmp/busy/train.lock"
flock -n 9 && echo $$ >&9
out=$("$TF" train configs/copy.ini "${tiny[@]}" --set output.dir="$tmp/busy" --stop-at 2 2>&1 >/dev/null); rc=$?
echo "  $out"
check "a second run on a busy directory: exit 2, naming the process" \
    test $rc -eq 2 -a -n "$(echo "$out" | grep "another training run (process $$)")"
check "the refused run wrote nothing" test "$(ls "$tmp/busy")" = train.lock
exec 9>&-
check "once the lock is released the run goes ahead" \
    "$TF" train configs/copy.ini "${tiny[@]}" --set output.dir="$tmp/busy" --stop-at 2

# ---- a model too big for the memory ---------------------------------------------------
out=$("$TF" train configs/copy.ini --set model.d_model=4096 --set model.d_ff=1000000 \
      --set output.dir="$tmp/huge" --quiet 2>&1 >/dev/null); rc=$?
echo "  $out"
check "a model that cannot fit: exit 2 before allocating, naming what it needs and what there is" \
    test $rc -eq 2 -a -n "$(echo "$out" | grep -E 'needs [0-9.]+ GB \(parameters .* GB of memory available')"

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
