# lib.sh: what the command-level tests (tests/cli_*.sh) share, sourced from
# the repository root: the binaries, a temporary directory removed on exit,
# check(), tensors() to compare checkpoints (tests/st.py reads them) and
# word_corpus() to make a text.
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

# word_corpus SEED LINES WORDS...: LINES lines of 3 to 8 words drawn from
# WORDS (a text with structure to learn), to stdout.
word_corpus() {
    local seed=$1 lines=$2
    shift 2
    awk -v seed="$seed" -v lines="$lines" -v words="$*" 'BEGIN { srand(seed); k = split(words, w, " ")
        for (i = 0; i < lines; i++) { n = 3 + int(rand() * 6); s = ""
          for (j = 0; j < n; j++) s = s (j ? " " : "") w[1 + int(rand() * k)]
          print s } }'
}

# small_gpt_model: the [model] section of a small decoder-only model (2
# layers of 32, pre-LN, learned positions) for the text-task tests, to
# stdout; the caller appends its own keys, then further sections.
small_gpt_model() {
    printf '%s\n' '[model]' 'kind = decoder_only' 'd_model = 32' 'heads = 2' 'encoder_layers = 0' \
        'decoder_layers = 2' 'd_ff = 64' 'norm_first = true' 'positions = learned'
}
