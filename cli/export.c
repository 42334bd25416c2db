/* export.c: `tapeformer export CHECKPOINT OUT.safetensors`: the weights
 * alone, as float32, for inference and other frameworks. */
#include <stdio.h>

#include "cli.h"
#include "commands.h"

static const char usage[] =
    "usage: tapeformer export CHECKPOINT OUT.safetensors\n"
    "Writes the model's weights as float32 safetensors, named as torch.nn.Transformer's\n"
    "state_dict (see 'The model' in README.md; with tie_embeddings there is no generator.weight:\n"
    "use tgt_embed.weight), with the config and vocabulary in __metadata__ and no\n"
    "optimizer state. Every command that takes a CHECKPOINT also takes this file.\n"
    "OUT is written atomically. Exit status 2 on a bad file or option, 1 if OUT cannot\n"
    "be written.\n";

int tx_cmd_export(int argc, char **argv) {
    const char *path = NULL, *out = NULL;
    const char **pos[] = {&path, &out};
    int rc = tx_cli_parse(usage, argc, argv, NULL, 0, pos, 2);
    if (rc) return rc < 0 ? 0 : rc;
    tx_tool tool;
    if (tx_tool_open(&tool, "export", path)) return 2;
    const tx_trained *t = &tool.t;
    tx_err err;
    if (tx_checkpoint_save(out, &t->params, NULL, NULL, &t->info, &err)) {
        fprintf(stderr, "export: %s\n", err.msg);
        rc = 1;
    } else {
        printf("%s: %d tensors, %zu parameters (float32)\n", out, t->params.n, t->params.size);
    }
    tx_tool_close(&tool);
    return rc;
}
