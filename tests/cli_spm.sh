#!/usr/bin/env bash
# Command-level tests of SentencePiece vocabularies: a model trained at the
# start of a run (the same bytes for any thread count), a TSV corpus with
# Chinese targets learnt with it, checkpoints that need nothing else (the
# corpus deleted, then generate, score and attention), a text model sampled,
# a .model made by spm_train loaded (its own special ids lined up with ours),
# export --spm-model, and the errors: a corrupt .model, a vocabulary larger
# than the text allows.
set -u
. tests/lib.sh

# Numbers to Chinese, as a TSV corpus: "1204<TAB>一千二百零四".
awk 'BEGIN { split("零 一 二 三 四 五 六 七 八 九", d, " ")
             for (n = 1; n < 1000; n++) { s = ""; h = int(n / 100); t = int(n / 10) % 10; o = n % 10
               if (h) s = s d[h + 1] "百"
               if (t) s = s d[t + 1] "十"; else if (h && o) s = s "零"
               if (o) s = s d[o + 1]
               print n "\t" s } }' > "$tmp/zh.tsv"
cat > "$tmp/zh.ini" << EOF
[model]
d_model = 48
heads = 4
encoder_layers = 1
decoder_layers = 1
d_ff = 96
dropout = 0.0
[data]
task = tsv
train_file = zh.tsv
tokenize = sentencepiece
spm_type = bpe
vocab_size = 60
[train]
batch_size = 32
steps = 400
eval_every = 100
eval_examples = 50
[optim]
lr = 3e-3
EOF

# ---- the trained model: the same bytes with 1 and 2 threads ----------------------
vocab() { python3 tests/st.py meta "$1" vocab; }
OMP_NUM_THREADS=1 "$TF" train "$tmp/zh.ini" --set output.dir="$tmp/t1" --set train.steps=1 --quiet
OMP_NUM_THREADS=2 "$TF" train "$tmp/zh.ini" --set output.dir="$tmp/t2" --set train.steps=1 --quiet
check "the SentencePiece model is the same bytes with 1 and 2 threads" \
    cmp -s <(vocab "$tmp/t1/checkpoint.safetensors") <(vocab "$tmp/t2/checkpoint.safetensors")
check "... and it is in the checkpoint's vocabulary metadata" \
    grep -q '^tapeformer-vocab sentencepiece sentencepiece$' <(vocab "$tmp/t1/checkpoint.safetensors")

# ---- learning Chinese targets with BPE pieces -----------------------------------------------
out=$("$TF" train "$tmp/zh.ini" --set output.dir="$tmp/zh" --examples 0)
acc=$(grep -o 'exact match [0-9.]*' <<< "$out" | tail -n 1 | cut -d' ' -f3)
echo "  zh.tsv, 60 BPE pieces, 400 steps: exact match $acc%"
check "learns the TSV corpus with SentencePiece pieces (exact match >= 80%)" \
    awk -v a="$acc" 'BEGIN { exit !(a >= 80) }'

# ---- self-contained checkpoints -------------------------------------------------------------
ck="$tmp/zh/checkpoint.safetensors"
before=$(printf '123\n907\n45\n' | "$TF" generate "$ck")
rm "$tmp/zh.tsv"
got=$(printf '123\n907\n45\n' | "$TF" generate "$ck")
echo "  generate 123, 907, 45 -> $(tr '\n' ' ' <<< "$got")"
check "generate with the corpus deleted: the same Chinese text as before" \
    test "$got" = "$before" -a "$(grep -c '^[一二三四五六七八九十百零]*$' <<< "$got")" = 3
check "score with the corpus deleted" "$TF" score "$ck" <<< $'45\t四十五' > /dev/null
check "attention with the corpus deleted: maps labelled with pieces" \
    "$TF" attention "$ck" --input 45 --out "$tmp/att"
check "export --spm-model writes the .model beside the weights" \
    "$TF" export "$ck" "$tmp/w.safetensors" --spm-model "$tmp/zh.model" > /dev/null
check "... a model spm_encode reads, with the pieces the checkpoint has" \
    test "$(spm_encode --model="$tmp/zh.model" --output_format=id <<< '九百零七' | wc -w)" -ge 1
check "... and the exported weights carry the model too" \
    cmp -s <(vocab "$ck") <(vocab "$tmp/w.safetensors")
out=$("$TF" export "$tmp/t1/checkpoint.safetensors" "$tmp/x.safetensors" --spm-model "$tmp/x.model" 2>&1); rc=$?
check "export --spm-model of a SentencePiece checkpoint: exit 0" test $rc -eq 0

# ---- a text model: sample streams text, not pieces ----------------------------------------
word_corpus 5 1500 the cat sat on a mat and dog ran to park > "$tmp/corpus.txt"
{ small_gpt_model; cat << EOF; } > "$tmp/text.ini"
[data]
task = text
train_file = corpus.txt
tokenize = sentencepiece
vocab_size = 40
context = 16
[train]
batch_size = 16
steps = 150
eval_every = 50
eval_examples = 50
EOF
out=$("$TF" train "$tmp/text.ini" --set output.dir="$tmp/text" --examples 0)
check "text with SentencePiece: validation reports bits per character" grep -q 'bits/char' <<< "$out"
rm "$tmp/corpus.txt"
s=$("$TF" sample "$tmp/text/checkpoint.safetensors" --prompt "the cat" --tokens 30 --seed 3)
check "sample with the corpus deleted prints text (no '▁' marks), from the prompt on" \
    test -n "$s" -a -z "$(grep -F '▁' <<< "$s")" -a "${s:0:7}" = "the cat"

# ---- a model made by spm_train, loaded: its special ids differ from ours --------------------
awk 'BEGIN { for (n = 1; n < 400; n++) print n "\tx" n }' > "$tmp/x.tsv"
cut -f2 "$tmp/x.tsv" > "$tmp/x.txt"
spm_train --input="$tmp/x.txt" --model_prefix="$tmp/own" --vocab_size=30 --model_type=bpe \
    --minloglevel=2 > /dev/null 2>&1 # unk 0, bos 1, eos 2, no padding: spm_train's defaults
sed -e "s|^train_file = .*|train_file = x.tsv|" -e "s|^vocab_size = .*|spm_model = own.model|" \
    "$tmp/zh.ini" > "$tmp/own.ini"
out=$("$TF" train "$tmp/own.ini" --set output.dir="$tmp/own" --set train.steps=300 --examples 0 2>&1); rc=$?
acc=$(grep -o 'exact match [0-9.]*' <<< "$out" | tail -n 1 | cut -d' ' -f3)
echo "  x.tsv with spm_train's model (unk 0, bos 1, eos 2): exact match $acc%"
check "a .model from spm_train loads and learns (exact match >= 50%)" \
    awk -v rc=$rc -v a="${acc:-0}" 'BEGIN { exit !(rc == 0 && a >= 50) }'
check "... generate decodes its pieces back to text" \
    test "$("$TF" generate "$tmp/own/checkpoint.safetensors" <<< 5)" = x5

# ---- errors -------------------------------------------------------------------------------------
head -c 300 /dev/urandom > "$tmp/bad.model"
sed -e "s|^vocab_size = .*|spm_model = bad.model|" -e "s|^train_file = .*|train_file = x.tsv|" \
    "$tmp/zh.ini" > "$tmp/bad.ini"
out=$("$TF" train "$tmp/bad.ini" --set output.dir="$tmp/bad" 2>&1); rc=$?
check "a corrupt .model: exit 2, one line naming the file" \
    test $rc -eq 2 -a "$(wc -l <<< "$out")" -eq 1 -a -n "$(grep -F "$tmp/bad.model: not a SentencePiece model" <<< "$out")"
out=$("$TF" train "$tmp/own.ini" --set data.spm_model= --set data.vocab_size=5000 \
      --set output.dir="$tmp/big" 2>&1); rc=$?
check "a vocabulary larger than the text allows: exit 2, naming data.vocab_size and the limit" \
    test $rc -eq 2 -a -n "$(grep -E '^train: data.vocab_size = 5000: .*<= [0-9]+' <<< "$out")"
exit $fail
