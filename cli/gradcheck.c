/* gradcheck.c: `tapeformer gradcheck [NAME ...]`: runs the named gradcheck
 * cases of gradcheck/ (all by default) and prints one table row each. Built
 * into the double program only; the float one runs that one instead. */
#include <stdio.h>
#include <string.h>

#include "../gradcheck/cases.h"
#include "commands.h"

static int known(const char *name) {
    for (int i = 0; tx_gc_case_name(NULL, i); i++)
        if (!strcmp(tx_gc_case_name(NULL, i), name)) return 1;
    return 0;
}

static int wanted(const char *name, int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name)) return 1;
    return argc == 1;
}

int tx_cmd_gradcheck(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: tapeformer gradcheck [NAME ...]\n"
                   "Checks every op and layer (or the NAMEs given) against central\n"
                   "finite differences in double precision: eps %g, pass when\n"
                   "|analytic - numeric| <= %g + %g*|numeric| for every element.\n"
                   "Cases:", TX_GC_EPS, TX_GC_ATOL, TX_GC_RTOL);
            for (int k = 0; tx_gc_case_name(NULL, k); k++) printf(" %s", tx_gc_case_name(NULL, k));
            printf("\n");
            return 0;
        }
        if (!known(argv[i])) {
            fprintf(stderr, "gradcheck: unknown case '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    printf("%-30s %10s %12s %12s %6s  %s\n", "name", "elements", "max abs err",
           "max rel err", "kinks", "result");
    int nfail = 0, ncase = 0;
    for (int k = 0; tx_gc_case_name(NULL, k); k++) {
        const char *name = tx_gc_case_name(NULL, k);
        if (!wanted(name, argc, argv)) continue;
        tx_gc_stats st = {0};
        tx_gc_run(name, &st);
        int ok = st.failed == 0 && st.checked > 0;
        nfail += !ok;
        ncase++;
        printf("%-30s %10ld %12.3e %12.3e %6ld  %s\n", name, st.checked, st.max_abs,
               st.max_rel, st.kinks, ok ? "pass" : "FAIL");
        fflush(stdout);
    }
    printf("%d of %d cases passed\n", ncase - nfail, ncase);
    return nfail ? 1 : 0;
}
