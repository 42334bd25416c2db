/* export.c: `tapeformer export CHECKPOINT OUT.safetensors`: the weights
 * alone, as float32, for inference and other frameworks. */
#include <stdio.h>

#include "cli.h"
#include "commands.h"

static const char usage[] =
    "usage: tapeformer export CHECKPOINT OUT.safetensors [--spm-model FILE]\n"
    "Writes the model's weights as float32 safetensors, named as torch.nn.Transformer's\n"
    "state_dict (see 'The model' in README.md; with tie_embeddings there is no generator.weight:\n"
    "use tgt_embed.weight), with the config and vocabulary in __metadata__ and no\n"
    "optimizer state. Every command that takes a CHECKPOINT also takes this file.\n"
    "  --spm-model FILE  also write the SentencePiece model (tokenize = sentencepiece)\n"
    "                    as a .model file, for spm_encode or sentencepiece in Python\n"
    "Files are written atomically. Exit status 2 on a bad file or option, 1 if a file\n"
    "cannot be written.\n";

int tx_cmd_export(int argc, char **argv) {
    const char *path = NULL, *out = NULL, *spm = NULL;
    const char **pos[] = {&path, &out};
    const tx_arg args[] = {{"spm-model", TX_ARG_STR, &spm, 0, 0}};
    int rc = tx_cli_parse(usage, argc, argv, args, 1, pos, 2);
    if (rc) return rc < 0 ? 0 : rc;
    tx_tool tool;
    if (tx_tool_open(&tool, "export", path)) return 2;
    const tx_trained *t = &tool.t;
    tx_err err;
    if (spm && !t->vocab.spm) {
        fprintf(stderr, "export: --spm-model: %s has no SentencePiece model (tokenize = %s)\n",
                path, t->vocab.mode[TX_TGT] == TX_TOK_WORD ? "word" : "char or byte");
        rc = 2;
    } else if (tx_checkpoint_save(out, &t->params, NULL, NULL, &t->info, &err) ||
               (spm && tx_write_file(spm, t->vocab.spm_model, t->vocab.spm_len, &err))) {
        fprintf(stderr, "export: %s\n", err.msg);
        rc = 1;
    } else {
        printf("%s: %d tensors, %zu parameters (float32)\n", out, t->params.n, t->params.size);
        if (spm) printf("%s: the SentencePiece model\n", spm);
    }
    tx_tool_close(&tool);
    return rc;
}
