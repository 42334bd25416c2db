#!/usr/bin/env bash
# Command-level tests of language modelling: the text task (char and byte
# tokens), its validation (loss, bits per character) and exact resume,
# `sample` (reproducible, streaming, its options and errors), `eval` on text,
# and decoding with the key/value cache against decoding without it.
set -u
. tests/lib.sh

# A corpus with structure to learn: lines of words from a small set, some
# with two-byte and three-byte characters.
word_corpus 11 2500 the cat sat on a mat and dog ran to café über 日本 park > "$tmp/corpus.txt"
{ small_gpt_model; cat << EOF; } > "$tmp/text.ini"
activation = gelu
dropout = 0.1
[data]
task = text
train_file = corpus.txt
tokenize = char
context = 24
[train]
batch_size = 16
steps = 200
eval_every = 50
eval_examples = 100
[optim]
lr = 3e-3
EOF

# ---- training on text --------------------------------------------------------
"$TF" train "$tmp/text.ini" --set output.dir="$tmp/char" --quiet
check "text training exits 0" test $? -eq 0
fell() { # fell METRICS: validation loss fell below 60% of the first, bits/char = loss/ln 2
    awk -F, 'NR > 1 && $6 != "" { if (v0 == "") v0 = $6; v1 = $6; b = $9; a = $7 }
             END { printf "  valid loss %s -> %s, %s bits/char\n", v0, v1, b
                   exit !(v1 < 0.6 * v0 && a == "" && (b - v1 / log(2)) ^ 2 < 1e-8) }' "$1"
}
check "validation loss falls; bits per character (char tokens) = loss / ln 2, no accuracy" \
    fell "$tmp/char/metrics.csv"
last=$(awk -F, '$6 != "" { l = $6; b = $9 } END { printf "loss %s  bits_per_char %s", l, b }' \
       "$tmp/char/metrics.csv")
check "eval on a text model prints training's last validation" \
    grep -q "^$last  windows 100 " <("$TF" eval "$tmp/char/checkpoint.safetensors")
head -n 60 "$tmp/corpus.txt" > "$tmp/part.txt"
windows=$(( ($(wc -m < "$tmp/part.txt") - 1) / 24 ))
check "eval --data FILE: every window ($windows) of a text file" \
    grep -q "windows $windows " <("$TF" eval "$tmp/char/checkpoint.safetensors" --data "$tmp/part.txt")

# byte tokens: the three-byte characters are three tokens; the vocabulary
# (bytes that are not UTF-8 alone, and the newline) survives the checkpoint
"$TF" train "$tmp/text.ini" --set data.tokenize=byte --set train.steps=100 \
    --set output.dir="$tmp/byte" --quiet
check "byte tokens train and their vocabulary reloads (eval)" \
    grep -q "bits_per_char" <("$TF" eval "$tmp/byte/checkpoint.safetensors")
bpb=$(awk -F, '$6 != "" { l = $6; b = $9 } END { print (b < l / log(2) ? "fewer" : "more") }' \
      "$tmp/byte/metrics.csv")
check "bytes: more tokens than characters, so bits per character exceed loss / ln 2" test "$bpb" = more

# exact resume: windows come from a seeded stream saved in the checkpoint
"$TF" train "$tmp/text.ini" --set train.steps=40 --set output.dir="$tmp/full" --quiet
"$TF" train "$tmp/text.ini" --set train.steps=40 --set output.dir="$tmp/part" --stop-at 17 --quiet
"$TF" train "$tmp/text.ini" --set train.steps=40 --set output.dir="$tmp/part" --resume --quiet
check "text: interrupted at 17 and resumed == uninterrupted, bit for bit" \
    cmp -s <(tensors "$tmp/full/checkpoint.safetensors") <(tensors "$tmp/part/checkpoint.safetensors")

# ---- sample ----------------------------------------------------------------------
ck=$tmp/char/checkpoint.safetensors
a=$("$TF" sample "$ck" --prompt "the " --tokens 60 --seed 7)
b=$("$TF" sample "$ck" --prompt "the " --tokens 60 --seed 7)
c=$("$TF" sample "$ck" --prompt "the " --tokens 60 --seed 8)
echo "  seed 7: $(echo "$a" | head -n 2 | tr '\n' '|')"
check "sample: the prompt first, then the continuation" test "${a:0:4}" = "the "
check "sample: the same seed gives the same text" test "$a" = "$b"
check "sample: another seed another text" test "$a" != "$c"
check "sample: 60 tokens (characters) after the prompt" test "$(printf '%s' "$a" | wc -m)" -eq 64
check "sample --no-cache draws the same text" \
    test "$("$TF" sample "$ck" --prompt "the " --tokens 60 --seed 7 --no-cache)" = "$a"
# past the context (24 positions): the last half becomes the prompt
long=$("$TF" sample "$ck" --prompt "a" --tokens 100 --seed 3 --temperature 0.5)
check "sample: 100 tokens, past the model's 24 positions" test "$(printf '%s' "$long" | wc -m)" -eq 101
g1=$("$TF" sample "$ck" --prompt "the cat " --tokens 20 --temperature 0 --seed 1)
g2=$("$TF" sample "$ck" --prompt "the cat " --tokens 20 --temperature 0 --seed 2)
check "sample --temperature 0 is greedy: the seed does not matter" test "$g1" = "$g2"
t1=$("$TF" sample "$ck" --prompt "the" --tokens 30 --top-k 1 --seed 4)
t2=$("$TF" sample "$ck" --prompt "the" --tokens 30 --temperature 0)
check "sample --top-k 1 is greedy too" test "$t1" = "$t2"
check "sample --count 3: three samples separated by ---" \
    test "$("$TF" sample "$ck" --prompt "a" --tokens 5 --count 3 | grep -c '^---$')" -eq 2
check "sample reads the prompt from stdin" \
    test "$(printf 'the ' | "$TF" sample "$ck" --tokens 60 --seed 7)" = "$a"
fails() { # fails CODE SUBSTRING CMD...: exit CODE, one stderr line containing SUBSTRING
    out=$("${@:3}" 2>&1 >/dev/null < /dev/null); rc=$?
    [ $rc -eq "$1" ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && [[ "$out" == *"$2"* ]] ||
        { echo "  rc=$rc: $out"; return 1; }
}
check "sample --help" sh -c "'$TF' sample --help | grep -q '^usage: tapeformer sample'"
check "sample: bad --top-p" fails 2 "--top-p: expected a number" "$TF" sample "$ck" --top-p 0
check "sample: bad --temperature" fails 2 "--temperature: expected a number" \
    "$TF" sample "$ck" --temperature -1
check "sample --strict: a prompt character outside the vocabulary" \
    fails 2 "source token 'Q' is not in the model's vocabulary" "$TF" sample "$ck" --prompt Q --strict
check "generate on a text model points to sample" fails 2 "use 'tapeformer sample'" \
    "$TF" generate "$ck" --input the

# ---- bad text corpora: one line, exit 2 ----------------------------------------------
corpus_error() { # corpus_error EXPECTED BYTES...
    printf "$2" > "$tmp/bad.txt"
    fails 2 "$1" "$TF" train "$tmp/text.ini" --set data.train_file="$tmp/bad.txt" \
        --set output.dir="$tmp/bad" --quiet
}
check "text: empty file" corpus_error "bad.txt: empty file, expected text" ''
check "text: invalid UTF-8, naming line and byte" corpus_error "bad.txt:2: invalid UTF-8 at byte 3" 'ab\ncd\xffe\n'
check "text: shorter than a window" corpus_error "fewer than one window of context + 1 = 25 tokens" 'short text\n'
check "text: an encoder-decoder model" fails 2 "model.kind" "$TF" train "$tmp/text.ini" \
    --set model.kind=encoder_decoder --set model.encoder_layers=1 --set output.dir="$tmp/bad"

# ---- the key/value cache changes nothing but the speed (float build) ----------------
# Both kinds of model, greedy and beam: the same tokens and per-token
# log-probabilities within 1e-5 with and without the cache.
"$TF" train configs/copy.ini --set data.symbols=6 --set data.max_len=5 --set model.d_model=32 \
    --set model.heads=2 --set model.encoder_layers=1 --set model.decoder_layers=2 \
    --set model.d_ff=64 --set train.batch_size=32 --set train.steps=150 --set train.eval_every=150 \
    --set train.eval_examples=50 --set optim.lr=3e-3 --set output.dir="$tmp/ed" --quiet
"$TF" train configs/reverse-gpt.ini --set data.symbols=6 --set data.max_len=5 --set model.d_model=32 \
    --set model.heads=2 --set model.d_ff=64 --set train.batch_size=32 --set train.steps=150 \
    --set train.eval_every=150 --set train.eval_examples=50 --set optim.lr=3e-3 \
    --set output.dir="$tmp/do" --quiet
awk 'BEGIN { srand(5); for (i = 0; i < 40; i++) { n = 1 + int(rand() * 5); s = ""
             for (j = 0; j < n; j++) s = s (j ? " " : "") (1 + int(rand() * 6)); print s } }' > "$tmp/src.txt"
same() { # same OUT1 OUT2: equal tokens, log-probabilities within 1e-5
    paste -d '\n' "$1" "$2" | awk -F'\t' 'NR % 2 { t = $1; n = split($2, a, " "); next }
        { if ($1 != t) bad = 1; m = split($2, b, " "); if (m != n) bad = 1
          for (i = 1; i <= n; i++) { d = a[i] - b[i]; if (d * d > 1e-10) bad = 1 } ; c++ }
        END { printf "  %d lines compared\n", c; exit bad || c != 40 }'
}
for kind in ed do; do
    for beam in 1 3; do
        "$TF" generate "$tmp/$kind/checkpoint.safetensors" --beam $beam --logprobs < "$tmp/src.txt" > "$tmp/c.out"
        "$TF" generate "$tmp/$kind/checkpoint.safetensors" --beam $beam --logprobs --no-cache < "$tmp/src.txt" > "$tmp/n.out"
        check "$kind, beam $beam: tokens and log-probabilities the same without the cache" same "$tmp/c.out" "$tmp/n.out"
    done
done
exit $fail
