#!/usr/bin/env bash
# man.sh TAPEFORMER: the man page tapeformer(1) on stdout, made by help2man
# from `tapeformer --help` and `--version`, with a COMMANDS section holding
# every command's own --help, so the page covers each of them.
set -euo pipefail
tf=$1
inc=$(mktemp)
trap 'rm -f "$inc"' EXIT
commands=$("$tf" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
{
    echo "[DESCRIPTION]"
    echo "Tapeformer trains Transformer models (the encoder-decoder of \"Attention Is All You"
    echo "Need\" and decoder-only GPT-style models) from INI config files, with a hand-written"
    echo "tape-based autograd in C, and uses them: decoding, sampling, scoring, exporting"
    echo "weights as safetensors, drawing attention maps and training curves, and checking"
    echo "gradients by finite differences. Run with mpirun, train spreads one model over"
    echo "several processes. README.md of the source holds the full guide."
    echo
    echo "[COMMANDS]"
    for c in $commands; do
        echo ".SS $c"
        echo ".nf"
        # roff: a backslash is \e; a line starting with . or ' needs \& in front
        "$tf" "$c" --help | sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
        echo ".fi"
    done
    echo
    echo "[EXIT STATUS]"
    echo "0 on success; 2 on bad input (a file, option, config key or input line), with one"
    echo "line on stderr naming the file and line or key; 1 when an output cannot be written;"
    echo "130 when training was interrupted (its checkpoint saved)."
    echo
    echo "[ENVIRONMENT]"
    echo ".TP"
    echo ".B OMP_NUM_THREADS"
    echo "threads per process (or [train] threads)."
    echo ".TP"
    echo ".B TAPEFORMER_PAR_MIN"
    echo "\"E,M\": the parallel thresholds, elements and multiply-adds."
    echo
    echo "[SEE ALSO]"
    echo "mpirun(1), spm_train(1); docs/api.md for the C library (libtapeformer, pkg-config"
    echo "tapeformer)."
} > "$inc"
# the version alone: what this build can do (OpenMP, MPI, bf16) is the build
# machine's, not the page's
help2man --no-info --name="train and use Transformer models from config files" \
    --version-string="$("$tf" --version | awk 'NR == 1 { print $2 }')" \
    --section=1 --include="$inc" "$tf"
