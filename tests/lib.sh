# lib.sh: what the command-level tests (tests/cli_*.sh) share, sourced from
# the repository root: the binaries, a temporary directory removed on exit,
# check(), and tensors() to compare checkpoints (tests/st.py reads them).
TF=${TAPEFORMER:-build/tapeformer}
TF64=${TAPEFORMER64:-build/tapeformer64}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

check() { # check DESCRIPTION COMMAND...: runs COMMAND, reports
    if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

# tensors CHECKPOINT: name, dtype, shape and a hash of each tensor's bytes,
# then the step and data position. The header also holds the run's paths,
# so comparing these lines compares what training computed, nothing else.
tensors() { python3 tests/st.py tensors "$1"; }
