/* testutil.h: what every tests/check_<module>.c shares: Check, a tolerance
 * assertion, a scratch directory, a gradcheck assertion, and a main() that
 * runs the file's one suite. */
#ifndef TX_TESTUTIL_H
#define TX_TESTUTIL_H

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ck_near(got, want, tol)                                                \
    do {                                                                       \
        double g_ = (got), w_ = (want);                                        \
        ck_assert_msg(fabs(g_ - w_) <= (tol), "%s = %.12g, expected %.12g",    \
                      #got, g_, w_);                                           \
    } while (0)

/* A fresh directory for a test's files (make_dir), removed with everything
 * in it (remove_dir). */
static char test_dir[64];
static inline void make_dir(void) {
    strcpy(test_dir, "/tmp/tapeformer_test_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(test_dir));
}
static inline void remove_dir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", test_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Every row of gradcheck case `name` (gradcheck/cases.h) passes. */
#define ck_gradcheck(name)                                                     \
    do {                                                                       \
        tx_gc_stats st_ = {0};                                                 \
        ck_assert_int_gt(tx_gc_run(name, &st_), 0);                            \
        ck_assert_msg(st_.checked > 0 && st_.failed == 0,                      \
                      "%s: %ld of %ld elements failed (max abs %.3g, max rel " \
                      "%.3g)", name, st_.failed, st_.checked, st_.max_abs,     \
                      st_.max_rel);                                            \
    } while (0)

/* Each test file defines `Suite *suite(void)` and ends with TX_TEST_MAIN. */
#define TX_TEST_MAIN                                                           \
    int main(void) {                                                           \
        SRunner *sr = srunner_create(suite());                                 \
        srunner_run_all(sr, CK_NORMAL);                                        \
        int nf = srunner_ntests_failed(sr);                                    \
        srunner_free(sr);                                                      \
        return nf ? EXIT_FAILURE : EXIT_SUCCESS;                               \
    }

#endif
