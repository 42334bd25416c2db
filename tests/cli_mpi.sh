#!/usr/bin/env bash
# Training on several processes (mpirun): weights bitwise identical for 1, 2
# and 3 processes (oversubscribed on this machine) and for the shared-memory
# and the TCP transports, on an encoder-decoder and a decoder-only model with
# dropout; resuming a 2-process checkpoint with 1 and 3; a rank killed; a
# SIGTERM to one rank; accumulate not a multiple of the processes. A build
# without MPI must refuse to run under mpirun.
set -u
. tests/lib.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Open MPI keeps memory LeakSanitizer would report (make sanitize)
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
mpi() { # mpi N ARGS...: tapeformer train under mpirun with N processes, 1 thread each
    local n=$1
    shift
    OMP_NUM_THREADS=1 timeout 300 mpirun -np "$n" "${transport[@]}" "$TF" train "$@"
}
transport=()

if ! "$TF" --version | grep -q MPI; then
    out=$(OMP_NUM_THREADS=1 timeout 60 mpirun -np 2 "$TF" train configs/copy.ini --set train.steps=1 \
          --set output.dir="$tmp/nompi" --quiet 2>&1)
    check "a build without MPI refuses to run under mpirun" grep -q "this build has no MPI" <<< "$out"
    exit $fail
fi

common=(--set data.symbols=6 --set data.max_len=5 --set model.d_model=32 --set model.heads=2
        --set model.d_ff=64 --set train.batch_size=8 --set train.eval_examples=40
        --set train.eval_every=10 --set train.checkpoint_every=5 --set train.accumulate=6
        --set model.dropout=0.1 --set optim.lr=3e-3 --quiet)
ed=(configs/copy.ini "${common[@]}" --set model.encoder_layers=1 --set model.decoder_layers=1)
gpt=(configs/reverse-gpt.ini "${common[@]}" --set model.decoder_layers=2)

# ---- the same bits for any number of processes ----------------------------------
for kind in ed gpt; do
    declare -n cfg=$kind
    "$TF" train "${cfg[@]}" --set train.steps=20 --set output.dir="$tmp/$kind-1" > /dev/null
    tensors "$tmp/$kind-1/checkpoint.safetensors" > "$tmp/$kind-1.sum"
    for n in 2 3; do
        mpi $n "${cfg[@]}" --set train.steps=20 --set output.dir="$tmp/$kind-$n" > /dev/null
        check "$kind: $n processes give the weights and moments of one, bit for bit" \
            cmp -s "$tmp/$kind-1.sum" <(tensors "$tmp/$kind-$n/checkpoint.safetensors")
    done
    check "$kind: the runs trained (20 steps, loss falling)" awk -F, \
        'NR == 2 { a = $3 } END { exit !($1 == 20 && $3 < a) }' "$tmp/$kind-3/metrics.csv"
    check "$kind: metrics.csv written once (rank 0), the same as one process's losses" \
        cmp -s <(cut -d, -f1-4 "$tmp/$kind-1/metrics.csv") <(cut -d, -f1-4 "$tmp/$kind-3/metrics.csv")
done
transport=(--mca btl self,tcp)
mpi 2 "${ed[@]}" --set train.steps=20 --set output.dir="$tmp/tcp" > /dev/null
check "ed: 2 processes over TCP (the path between machines), the same bits" \
    cmp -s "$tmp/ed-1.sum" <(tensors "$tmp/tcp/checkpoint.safetensors")
mpi 3 "${gpt[@]}" --set train.steps=20 --set output.dir="$tmp/tcp3" > /dev/null
check "gpt: 3 processes over TCP, the same bits" \
    cmp -s "$tmp/gpt-1.sum" <(tensors "$tmp/tcp3/checkpoint.safetensors")
transport=()

# ---- resume a 2-process checkpoint with 1 and with 3 ----------------------------------
mpi 2 "${gpt[@]}" --set train.steps=20 --set output.dir="$tmp/part" --stop-at 10 > /dev/null
cp -r "$tmp/part" "$tmp/part3"
"$TF" train "${gpt[@]}" --set train.steps=20 --set output.dir="$tmp/part" --resume > /dev/null
mpi 3 "${gpt[@]}" --set train.steps=20 --set output.dir="$tmp/part3" --resume > /dev/null
check "stopped at 10 with 2 processes, resumed with 1: the same bits" \
    cmp -s "$tmp/gpt-1.sum" <(tensors "$tmp/part/checkpoint.safetensors")
check "stopped at 10 with 2 processes, resumed with 3: the same bits" \
    cmp -s "$tmp/gpt-1.sum" <(tensors "$tmp/part3/checkpoint.safetensors")

# ---- accumulate not a multiple of the processes -------------------------------------------
out=$(mpi 4 "${ed[@]}" --set output.dir="$tmp/bad" 2>&1); rc=$?
check "accumulate 6 with 4 processes: refused, naming the key" \
    test $rc -ne 0 -a -n "$(grep '\[train\] accumulate: expected a multiple of the 4 processes' <<< "$out")"

# ---- one rank fails on its own (here: no checkpoint where it looks): rank 0 names it ---------
out=$(OMP_NUM_THREADS=1 timeout 60 mpirun -np 2 sh -c 'd=$0; [ "$OMPI_COMM_WORLD_RANK" = 1 ] && d=$0-elsewhere
        exec "$@" --set output.dir="$d"' "$tmp/part" "$TF" train "${gpt[@]}" --resume 2>&1); rc=$?
check "a rank's own error: exit 2, rank 0 prints it once, naming the rank" \
    test $rc -eq 2 -a "$(grep -c "^train: rank 1: $tmp/part-elsewhere/checkpoint.safetensors: no checkpoint" <<< "$out")" = 1

# ---- a rank killed: the job ends, naming it; the last checkpoint loads ---------------------
start=$(date +%s)
out=$(mpi 2 "${ed[@]}" --set train.steps=40 --set output.dir="$tmp/kill" --kill-at 13@1 2>&1); rc=$?
took=$(( $(date +%s) - start ))
echo "  exit $rc after ${took} s: $(grep -m1 -i 'rank 1' <<< "$out")"
check "rank 1 killed: the job ends with an error naming rank 1" \
    test $rc -ne 0 -a -n "$(grep -i 'rank 1' <<< "$out")"
check "rank 1 killed: the job ended within 30 s" test $took -le 30
check "rank 1 killed at step 13: the checkpoint of step 10 is whole" \
    grep -q '^step 10 ' <(tensors "$tmp/kill/checkpoint.safetensors")
check "... and it resumes" "$TF" train "${ed[@]}" --set train.steps=12 --set output.dir="$tmp/kill" --resume

# ---- SIGTERM to one rank: every rank stops at the same step, one checkpoint ----------------
mpi 2 "${ed[@]}" --set train.steps=100000 --set train.log_every=1 --set output.dir="$tmp/term" > /dev/null 2>&1 &
for _ in $(seq 300); do [ "$({ wc -l < "$tmp/term/metrics.csv"; } 2> /dev/null || echo 0)" -gt 5 ] && break; sleep 0.1; done
victim=$(pgrep -f "output.dir=$tmp/term" | while read -r p; do
             [ "$(ps -o comm= -p "$p")" = tapeformer ] && echo "$p"; done | tail -n 1)
kill -TERM "$victim"
wait $!
last=$(tail -n 1 "$tmp/term/metrics.csv" | cut -d, -f1)
check "SIGTERM to one rank: the checkpoint is of the last step logged ($last)" \
    grep -q "^step $last " <(tensors "$tmp/term/checkpoint.safetensors")
check "SIGTERM: no temporary file left" test -z "$(ls "$tmp/term" | grep '\.tmp$')"
exit $fail
