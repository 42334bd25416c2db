/* gradcheck_cmd.c: `tapeformer gradcheck [NAME ...]`: runs the named
 * gradcheck cases (all by default) and prints one table row each. */
#include "commands.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/gradcheck.h"
#include "../layers/layers.h"

#ifdef TX_DOUBLE
static const tx_gc_case *const case_lists[] = {tx_gc_core_cases,
                                                tx_gc_layer_cases};

static int wanted(const char *name, int argc, char **argv) {
    if (argc == 0) return 1;
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return 0;
}

int tx_cmd_gradcheck(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tapeformer gradcheck [NAME ...]\n"
                   "Checks every op and layer (or the NAMEs given) against central\n"
                   "finite differences in double precision: eps %g, pass when\n"
                   "|analytic - numeric| <= %g + %g*|numeric| for every element.\n"
                   "Cases:", TX_GC_EPS, TX_GC_ATOL, TX_GC_RTOL);
            for (size_t l = 0; l < sizeof case_lists / sizeof *case_lists; l++)
                for (const tx_gc_case *c = case_lists[l]; c->name; c++)
                    printf(" %s", c->name);
            printf("\n");
            return 0;
        }
        int known = 0;
        for (size_t l = 0; l < sizeof case_lists / sizeof *case_lists; l++)
            for (const tx_gc_case *c = case_lists[l]; c->name; c++)
                known |= !strcmp(c->name, argv[i]);
        if (!known) {
            fprintf(stderr, "gradcheck: unknown case '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    printf("%-28s %10s %12s %12s %6s  %s\n", "name", "elements", "max abs err",
           "max rel err", "kinks", "result");
    int nfail = 0, ncase = 0;
    for (size_t l = 0; l < sizeof case_lists / sizeof *case_lists; l++)
        for (const tx_gc_case *c = case_lists[l]; c->name; c++) {
            if (!wanted(c->name, argc, argv)) continue;
            tx_gc_stats st = {0};
            c->run(&st);
            int ok = st.failed == 0 && st.checked > 0;
            nfail += !ok;
            ncase++;
            printf("%-28s %10ld %12.3e %12.3e %6ld  %s\n", c->name, st.checked,
                   st.max_abs, st.max_rel, st.kinks, ok ? "pass" : "FAIL");
            fflush(stdout);
        }
    printf("%d of %d cases passed\n", ncase - nfail, ncase);
    return nfail ? 1 : 0;
}
#else
int tx_cmd_gradcheck(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "gradcheck: this build's scalar is float; run the double "
                    "build (build/tapeformer64)\n");
    return 2;
}
#endif
