#!/usr/bin/env bash
# Command-level tests of bad input: config files, command-line flags, TSV
# corpora and damaged checkpoints. Each must give exit code 2 and one line on
# stderr naming the file and the line or byte, print nothing on stdout, crash
# nothing and leave no output file behind. Run by tests/run.sh from the
# repository root; with ERRORS_TABLE=FILE it also writes the markdown table
# "bad input -> message" of the README to FILE.
set -u
TF=$(realpath "${TAPEFORMER:-build/tapeformer}")
root=$(pwd)
table=${ERRORS_TABLE:+$(realpath -m "$ERRORS_TABLE")}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1 # messages then show short relative paths
[ -n "$table" ] && printf '| Bad input | Message (exit code 2) |\n|---|---|\n' > "$table"
fail=0

# A listing of every file under out/ with its checksum: must not change.
snapshot() { find out -type f -exec sha256sum {} + 2>/dev/null | sort; }

# expect WHAT EXPECTED COMMAND...: runs COMMAND and checks the rules; stderr
# must contain EXPECTED, where '*' stands for any text. The exit code must be
# $rc_want (default 2).
expect() {
    local before after out rc lines pat
    before=$(snapshot)
    out=$("${@:3}" 2>&1 >stdout); rc=$?
    after=$(snapshot)
    lines=$(printf '%s\n' "$out" | grep -c .)
    pat=$(printf '%s' "$2" | sed 's/[][?\\]/\\&/g')
    if [ $rc -eq "${rc_want:-2}" ] && [ "$lines" -eq 1 ] && [[ "$out" == *$pat* ]] && [ ! -s stdout ] &&
        [ "$before" == "$after" ] && [ -z "$(find . -name '*.tmp')" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1: exit $rc, stdout $(wc -c < stdout) bytes, files $([ "$before" == "$after" ] &&
            echo kept || echo changed), stderr:"
        printf '%s\n' "$out" | head -n 5 | sed 's/^/       /'
        fail=1
    fi
    [ -n "$table" ] && printf '| %s | `%s`%s |\n' "$1" "$(printf '%s' "$out" | grep . | head -n 1)" \
        "$([ "${rc_want:-2}" = 2 ] || echo " (exit code $rc_want)")" >> "$table"
    return 0
}

# A small model, fast to build and train.
small=(--set data.symbols=6 --set data.max_len=5 --set model.d_model=16 --set model.heads=2
       --set model.encoder_layers=1 --set model.decoder_layers=1 --set model.d_ff=32
       --set train.batch_size=8 --set train.eval_examples=20 --set output.dir=out --quiet)

# ---- config files -----------------------------------------------------------
cfg() { printf '%b' "$1" > bad.ini; expect "$2" "$3" "$TF" train bad.ini "${small[@]}"; }
cfg '[model]\nd_model\n' "config: a line that is not 'key = value'" \
    "bad.ini:2: expected '[section]' or 'key = value'"
cfg '[modle]\nheads = 2\n' "config: unknown section" "bad.ini:2: [modle] heads: unknown section"
cfg '[model]\ncolour = red\n' "config: unknown key" "bad.ini:2: [model] colour: unknown key"
cfg '[train]\nsteps = 1e3\n' "config: not an integer" \
    "bad.ini:2: [train] steps: expected an integer in 1..1000000000, got '1e3'"
cfg '[optim]\nlr = -1\n' "config: number out of range" "bad.ini:2: [optim] lr: expected a number in (0, inf)"
cfg '[model]\nheads = 2\nheads = 4\n' "config: key set twice" \
    "bad.ini:3: [model] heads: set twice (first on line 2)"
cfg "[output]\nname = $(printf 'n%.0s' {1..300})\n" "config: line over 197 bytes" \
    "bad.ini:2: line longer than 197 bytes"
cfg '[model]\nd_model = 6\0\n' "config: NUL byte" "bad.ini: byte 19: NUL, expected text"
cfg '[output]\nname = a;b\n[data]\nmax_len = 9\nmin_len = 10\n' "config: keys that contradict" \
    "bad.ini:5: [data] min_len: expected at most max_len"
expect "config: file missing" "none.ini: cannot open: No such file or directory" \
    "$TF" train none.ini "${small[@]}"
mkdir -p adir.ini
expect "config: a directory" "adir.ini: cannot read: Is a directory" "$TF" train adir.ini "${small[@]}"

# ---- command-line flags -------------------------------------------------------
printf '[model]\nd_model = 16\n' > ok.ini
expect "flag: --set without '='" "--set 'model.heads': expected section.key=value" \
    "$TF" train ok.ini --set model.heads "${small[@]}"
expect "flag: --set unknown key" "--set model.colour: unknown key" \
    "$TF" train ok.ini "${small[@]}" --set model.colour=red
expect "flag: --set bad value" "--set model.heads: expected an integer in 1..4096, got 'two'" \
    "$TF" train ok.ini "${small[@]}" --set model.heads=two
expect "flag: --set value that cannot be saved" "--set output.name: expected a text of at most" \
    "$TF" train ok.ini "${small[@]}" --set "output.name=a ;b"
expect "flag: --stop-at not a number" "train: --stop-at: expected an integer in [0, 1e+15], got 'x'" \
    "$TF" train ok.ini "${small[@]}" --stop-at x
expect "flag: unknown option" "train: unknown option '--colour' (see --help)" \
    "$TF" train ok.ini "${small[@]}" --colour

# ---- TSV corpora ----------------------------------------------------------------
printf '[data]\ntask = tsv\ntrain_file = corpus.tsv\ntokenize = char\n' > tsv.ini
tsv() { printf '%b' "$1" > corpus.tsv; expect "$2" "$3" "$TF" train tsv.ini "${small[@]}"; }
good='ab\tba\ncd\tdc\nef\tfe\ngh\thg\n'
tsv "${good}ab\\xff\tx\n" "TSV: invalid UTF-8" "corpus.tsv:5: invalid UTF-8 at byte 3"
tsv "${good}a\\xc0\\x80\tx\n" "TSV: overlong UTF-8" "corpus.tsv:5: invalid UTF-8 at byte 2"
tsv "${good}a\\0b\tx\n" "TSV: NUL byte" "corpus.tsv:5: invalid UTF-8 at byte 2"
tsv "${good}no tab here\n" "TSV: line without a tab" "corpus.tsv:5: expected 'source<TAB>target', found no tab"
tsv "${good}a\tb\tc\n" "TSV: two tabs" "corpus.tsv:5: expected 'source<TAB>target', found more than one tab"
tsv "${good}\tb\n" "TSV: empty source" "corpus.tsv:5: empty source"
tsv "${good}a\t\n" "TSV: empty target" "corpus.tsv:5: empty target"
tsv "${good}$(printf 'x%.0s' {1..5000})\tb\n" "TSV: line over 4096 bytes" \
    "corpus.tsv:5: line longer than 4096 bytes"
tsv '' "TSV: empty file" "corpus.tsv:1: empty file: expected 'source<TAB>target' lines"
tsv '\n\r\n\n' "TSV: blank lines only" "corpus.tsv:4: empty file"
tsv 'ab\tba\n' "TSV: too few lines to hold some out" "corpus.tsv:1: holding out validation examples leaves none"
rm -f corpus.tsv; mkdir corpus.tsv
expect "TSV: a directory" "corpus.tsv: cannot read: Is a directory" "$TF" train tsv.ini "${small[@]}"
rmdir corpus.tsv
printf "$good" > corpus.tsv; printf 'ok\tko\nbad\n' > valid.tsv
expect "TSV: error in valid_file" "valid.tsv:2: expected 'source<TAB>target', found no tab" \
    "$TF" train tsv.ini "${small[@]}" --set data.valid_file=valid.tsv

# ---- checkpoints ----------------------------------------------------------------
# A real checkpoint, then damaged copies of it in its place. Every damage is
# tried by `train --resume` and, where the binary has them, by `export` and
# `generate` (whose config comes from the checkpoint itself).
"$TF" train ok.ini "${small[@]}" --set train.steps=2 > /dev/null || { echo "FAIL training"; exit 1; }
ck=out/checkpoint.safetensors
cp "$ck" good.safetensors
tools=()
"$TF" export --help > /dev/null 2>&1 && tools+=(export)
"$TF" generate --help > /dev/null 2>&1 && tools+=(generate)

# damage MODE: writes good.safetensors damaged by MODE to stdout.
damage() { python3 "$root/tests/st.py" damage "$1" good.safetensors; }

# ckpt WHAT MODE EXPECTED [TOOLS-EXPECTED]: EXPECTED after "train: PATH: " of
# --resume, TOOLS-EXPECTED (default EXPECTED) after "CMD: PATH: " of the tools.
# TOOLS-EXPECTED "-" skips the tools, EXPECTED "-" skips --resume.
ckpt() {
    damage "$2" > damaged.safetensors || { echo "FAIL damage $2"; fail=1; return; }
    cp damaged.safetensors "$ck"
    [ "$3" != - ] && expect "checkpoint: $1 (train --resume)" "train: $ck: *$3" \
        "$TF" train ok.ini "${small[@]}" --set train.steps=4 --resume
    local t
    [ "${4:-}" = - ] || for t in "${tools[@]}"; do
        if [ "$t" = export ]; then
            expect "checkpoint: $1 ($t)" "$t: damaged.safetensors: *${4:-$3}" "$TF" export damaged.safetensors out.safetensors
            [ -e out.safetensors ] && { echo "FAIL export left out.safetensors"; fail=1; rm -f out.safetensors; }
        else
            expect "checkpoint: $1 ($t)" "$t: damaged.safetensors: *${4:-$3}" "$TF" "$t" damaged.safetensors --input ab
        fi
    done
    cp good.safetensors "$ck"
}
ckpt "5 bytes long" tiny "byte 0: file of 5 bytes, expected at least 8 (header length)"
ckpt "truncated" cut "byte *: tensor \"*\": data_offsets end * past the * bytes of data"
ckpt "header length past the end" hlen-huge "byte 0: header length 1099511627776, expected at most"
ckpt "header length too short" hlen-short "expected valid JSON in the header"
ckpt "invalid JSON" json "expected valid JSON in the header"
ckpt "data offsets out of bounds" bounds "byte *: tensor \"*\": data_offsets end * past the * bytes of data"
ckpt "overlapping tensors" overlap "byte *: tensor \"*\" starts at data offset *, expected * (tensors must not overlap or leave holes)"
ckpt "unknown dtype" dtype "byte *: tensor \"*\": unknown dtype \"F31\""
ckpt "wrong dtype" int-dtype "expected dtype F32 or F64, got I32"
ckpt "NaN in weights" nan "element 0 is nan, expected a finite number"
ckpt "infinity in weights" inf "element 0 is -inf, expected a finite number"
ckpt "missing tensor" rename "tensor src_embed.weight: missing"
ckpt "metadata step negative" step "metadata step: expected a count, got '-3'" -
ckpt "metadata data_position short" position "metadata data_position: expected 6 comma-separated counts" -
# The tools build the model from the checkpoint's own metadata.
ckpt "config metadata describing another model" config - "tensor *: expected shape [48, 16]"
ckpt "config metadata missing" no-config - "metadata config: missing"
ckpt "vocabulary metadata invalid" vocab - "vocabulary:1:"
# Shapes that do not match the config: resuming under another model size.
expect "checkpoint: shapes not matching the config (train --resume)" "expected shape [48, 16]" \
    "$TF" train ok.ini "${small[@]}" --set model.d_ff=48 --set train.steps=4 --resume
expect "checkpoint: missing (train --resume)" \
    "train: out/none/checkpoint.safetensors: no checkpoint to resume from" \
    "$TF" train ok.ini "${small[@]}" --set output.dir=out/none --resume
exit $fail
