/* main.c: the `tapeformer` command line: dispatches to the subcommands. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/gemm.h"
#include "../dist/dist.h"
#include "commands.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: tapeformer COMMAND [ARGS]\n"
            "commands:\n"
            "  train CONFIG           train a model from an INI config file\n"
            "  generate CHECKPOINT    decode source lines (greedy or beam search)\n"
            "  sample CHECKPOINT      text drawn from a decoder-only model\n"
            "  score CHECKPOINT       per-token negative log-likelihood of source<TAB>target lines\n"
            "  eval CHECKPOINT        validation loss and exact-match accuracy\n"
            "  export CHECKPOINT OUT  weights only, float32 safetensors\n"
            "  attention CHECKPOINT   attention heatmaps (PNG) for one example\n"
            "  plot DIR               training curves from DIR/metrics.csv\n"
            "  gradcheck [NAME ...]   check every op and layer's gradients (double)\n"
            "Run 'tapeformer COMMAND --help' for a command's options; 'tapeformer --version'\n"
            "names the version and what this build can do.\n");
}

#ifndef TX_DOUBLE
/* gradcheck needs the double build: run build/tapeformer64 beside us. */
static int exec_double(char **argv) {
    char self[PATH_MAX], path[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0) {
        perror("tapeformer: /proc/self/exe");
        return 2;
    }
    self[n] = 0;
    snprintf(path, sizeof path, "%s/tapeformer64", dirname(self));
    argv[0] = path;
    execv(path, argv);
    fprintf(stderr, "tapeformer: cannot run %s (build it with 'make')\n", path);
    return 2;
}
#endif

/* "tapeformer 1.0.0 (float32, OpenMP 4.5, MPI, bf16 products)": what this
 * build can do. */
static int version(void) {
    printf("tapeformer %s (%s", TX_VERSION, sizeof(tx_real) == 4 ? "float32" : "float64");
#ifdef _OPENMP
    printf(", OpenMP");
#endif
    printf("%s%s)\n", tx_dist_built() ? ", MPI" : "",
           tx_bf16_supported() ? ", bf16 products" : "");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--version")) return version();
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "gradcheck")) {
#ifndef TX_DOUBLE
        return exec_double(argv);
#else
        return tx_cmd_gradcheck(argc - 1, argv + 1);
#endif
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {{"train", tx_cmd_train},       {"generate", tx_cmd_generate},
                {"sample", tx_cmd_sample},
                {"score", tx_cmd_score},       {"eval", tx_cmd_eval},
                {"export", tx_cmd_export},     {"attention", tx_cmd_attention},
                {"plot", tx_cmd_plot}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name)) return cmds[i].run(argc - 1, argv + 1);
    fprintf(stderr, "tapeformer: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
