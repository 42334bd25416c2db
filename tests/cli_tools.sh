#!/usr/bin/env bash
# Command-level tests of the tools run on a trained model: generate, score,
# eval, export, attention, plot; their errors and exit codes; the exported
# file against the safetensors spec and bit for bit against the checkpoint.
# Run by tests/run.sh from the repository root (python3: standard library).
set -u
. tests/lib.sh

# A copy model that learns in a few seconds.
"$TF" train configs/copy.ini --set data.symbols=6 --set data.max_len=5 \
    --set model.d_model=32 --set model.heads=2 --set model.encoder_layers=1 \
    --set model.decoder_layers=1 --set model.d_ff=64 --set train.batch_size=32 \
    --set train.eval_examples=200 --set train.target_accuracy=0 --set optim.lr=3e-3 \
    --set optim.warmup=20 --set train.steps=300 --set train.eval_every=100 \
    --set output.dir="$tmp/run" --quiet || { echo "FAIL training the test model"; exit 1; }
ck=$tmp/run/checkpoint.safetensors

# ---- generate -------------------------------------------------------------
printf '1 2 3\n5 4 3 2 1\n6\n' > "$tmp/src.txt"
"$TF" generate "$ck" < "$tmp/src.txt" > "$tmp/greedy.txt"; rc=$?
check "generate copies its input (greedy)" cmp -s "$tmp/src.txt" "$tmp/greedy.txt"
check "generate exits 0" test $rc -eq 0
"$TF" generate "$ck" --beam 4 --alpha 0.5 < "$tmp/src.txt" > "$tmp/beam.txt"
check "generate --beam 4 copies its input" cmp -s "$tmp/src.txt" "$tmp/beam.txt"
check "generate --input" test "$("$TF" generate "$ck" --input '4 4 2')" = "4 4 2"
check "generate --max-len 2 stops after 2 tokens" \
    test "$("$TF" generate "$ck" --input '1 2 3 4' --max-len 2)" = "1 2"

# Input the model was not trained on: tokens outside the vocabulary are read
# as <unk> with a warning per line (--strict: an error), and a source longer
# than any training source gets a warning.
out=$(printf '1 x 2\n3\n' | "$TF" generate "$ck" 2>&1 >/dev/null); rc=$?
echo "  $out"
check "unknown token: a warning naming the line and the token, exit 0" \
    test $rc -eq 0 -a "$(echo "$out" | grep -c .)" -eq 1 -a -n "$(echo "$out" | grep "^generate: stdin:1: 1 source token not in the model's vocabulary, read as <unk>, first 'x'")"
out=$(printf '1 2\n1 x 2\n' | "$TF" generate "$ck" --strict 2>&1 >/dev/null); rc=$?
check "unknown token with --strict: exit 2" test $rc -eq 2 -a -n "$(echo "$out" | grep "^generate: stdin:2: source token 'x' is not in the model's vocabulary")"
out=$(printf '1 2\tq\n' | "$TF" score "$ck" --strict 2>&1 >/dev/null); rc=$?
check "score --strict: an unknown target token is an error" test $rc -eq 2 -a -n "$(echo "$out" | grep "stdin:1: target token 'q'")"
printf '1 2\t1 2\n3 y\t3 y\n' > "$tmp/unk.tsv"
out=$("$TF" eval "$ck" --data "$tmp/unk.tsv" 2>&1 >/dev/null); rc=$?
check "eval --data: a warning naming FILE:LINE" test $rc -eq 0 -a -n "$(echo "$out" | grep "unk.tsv:2: 1 source token")"
out=$("$TF" generate "$ck" --input '1 2 3 4 5 6 1 2' 2>&1 >/dev/null); rc=$?
echo "  $out"
check "a source longer than any training source: a warning" \
    test $rc -eq 0 -a -n "$(echo "$out" | grep 'the source has 8 tokens, more than any training source (5)')"

# ---- score ----------------------------------------------------------------
printf '1 2 3\t1 2 3\n1 2 3\t3 2 1\n' | "$TF" score "$ck" > "$tmp/score.txt"
scored() { # 2 lines; 4 per-token values each, summing to the total; copy likelier
    awk -F'\t' '{ n = split($2, v, " "); s = 0; for (i = 1; i <= n; i++) s += v[i];
                  if (n != 4 || s - $1 > 2e-5 || $1 - s > 2e-5) bad = 1; t[NR] = $1 }
                END { exit !(NR == 2 && !bad && t[1] < 0.1 && t[2] > 1) }' "$tmp/score.txt"
}
check "score: NLL, per-token values, copy likelier than reversal" scored

# ---- eval -------------------------------------------------------------------
"$TF" eval "$ck" > "$tmp/eval.txt"
want=$(tail -n 1 "$tmp/run/metrics.csv" | awk -F, '{ printf "loss %s  exact_match %s", $6, $7 }')
check "eval reproduces the last validation of training" grep -q "^$want " "$tmp/eval.txt"
printf '1 2\t1 2\n3\t3\n\n4 5 6\t6 5 4\n' > "$tmp/pairs.tsv"
check "eval --data: 3 pairs, 2 exact" grep -q "exact_match 0.666667  examples 3 " \
    <("$TF" eval "$ck" --data "$tmp/pairs.tsv")

# ---- export -----------------------------------------------------------------
"$TF" export "$ck" "$tmp/model.safetensors" > /dev/null
check "export exits 0" test $? -eq 0
# The safetensors spec, checked independently of our reader (tests/st.py).
spec() { python3 tests/st.py spec "$1" "$2"; }
check "export follows the safetensors spec, equals the checkpoint bit for bit" \
    spec "$tmp/model.safetensors" "$ck"
"$TF64" export "$ck" "$tmp/model64.safetensors" > /dev/null
check "the double build exports the same bytes" cmp -s "$tmp/model.safetensors" "$tmp/model64.safetensors"
"$TF" generate "$tmp/model.safetensors" < "$tmp/src.txt" > "$tmp/greedy2.txt"
check "generate on the export equals on the checkpoint" cmp -s "$tmp/greedy.txt" "$tmp/greedy2.txt"
printf '1 2 3\t1 2 3\n1 2 3\t3 2 1\n' | "$TF" score "$tmp/model.safetensors" > "$tmp/score2.txt"
check "score on the export equals on the checkpoint" cmp -s "$tmp/score.txt" "$tmp/score2.txt"
"$TF" export "$tmp/model.safetensors" "$tmp/again.safetensors" > /dev/null
check "an export re-exports to the same bytes" cmp -s "$tmp/model.safetensors" "$tmp/again.safetensors"

# ---- attention and plot -------------------------------------------------------
png_size() { # png_size FILE: "W H" from the IHDR chunk
    python3 -c 'import struct, sys
b = open(sys.argv[1], "rb").read(24)
assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR"
print(*struct.unpack(">II", b[16:24]))' "$1"
}
"$TF" attention "$ck" --input '1 2 3' --out "$tmp/attn" --cell 10
check "attention exits 0" test $? -eq 0
# 1 encoder + 1 decoder layer, 2 heads: 3 kinds x 2 single maps + 3 grids.
check "attention: 9 PNGs" test "$(ls "$tmp/attn"/*.png | wc -l)" -eq 9
read -r w h < <(png_size "$tmp/attn/cross_layer0_head0.png")
check "attention map holds 4 x 3 cells of 10 px ($w x $h)" test "$w" -ge 30 -a "$h" -ge 40
read -r w h < <(png_size "$tmp/attn/encoder_self.png")
check "attention grid: 2 heads of 3 x 3 cells of >= 8 px ($w x $h)" test "$w" -ge 48 -a "$h" -ge 24
"$TF" attention "$ck" --input '1 2' --target '2 1' --out "$tmp/attn2" > /dev/null
check "attention --target" test -s "$tmp/attn2/decoder_self_layer0_head1.png"
"$TF" plot "$tmp/run" > /dev/null
check "plot writes curves.png 1000 x 420" test "$(png_size "$tmp/run/curves.png")" = "1000 420"

# ---- errors: one line on stderr, exit code 2 (1: an output cannot be written) --
fails() { # fails CODE SUBSTRING CMD...: exit CODE, one stderr line containing SUBSTRING
    out=$("${@:3}" 2>&1 >/dev/null < /dev/null); rc=$?
    [ $rc -eq "$1" ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && [[ "$out" == *"$2"* ]] ||
        { echo "  rc=$rc: $out"; return 1; }
}
check "unknown flag" fails 2 "unknown option '--bem'" "$TF" generate "$ck" --bem 2
check "bad flag value" fails 2 "--beam: expected an integer" "$TF" generate "$ck" --beam 0
check "missing checkpoint names it" fails 2 "$tmp/none.safetensors" "$TF" eval "$tmp/none.safetensors"
head -c 1000 "$ck" > "$tmp/cut.safetensors"
check "truncated checkpoint" fails 2 "cut.safetensors" "$TF" score "$tmp/cut.safetensors"
check "not a model: metrics.csv" fails 2 "metrics.csv" "$TF" generate "$tmp/run/metrics.csv"
check "score line without a tab" fails 2 "stdin:1: expected 'source<TAB>target'" \
    sh -c "echo '1 2 3' | $TF score $ck"
check "generate: empty source line" fails 2 "stdin:2: empty source" sh -c "printf '1\n\n' | $TF generate $ck"
check "eval --data: missing file" fails 2 "nope.tsv" "$TF" eval "$ck" --data "$tmp/nope.tsv"
check "attention needs --input" fails 2 "--input is required" "$TF" attention "$ck" --out "$tmp/a3"
check "export into a missing directory" fails 1 "$tmp/no/x.safetensors" "$TF" export "$ck" "$tmp/no/x.safetensors"
check "export: no file left behind" test ! -e "$tmp/no"
check "plot without metrics" fails 2 "metrics.csv" "$TF" plot "$tmp/attn"
check "plot: no image left behind" test ! -e "$tmp/attn/curves.png"
for c in generate score eval export attention plot; do
    check "$c --help" sh -c "'$TF' $c --help | grep -q '^usage: tapeformer $c'"
done
exit $fail
