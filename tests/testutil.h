/* testutil.h: what every tests/check_<module>.c shares: Check, a tolerance
 * assertion, and a main() that runs the file's one suite. */
#ifndef TX_TESTUTIL_H
#define TX_TESTUTIL_H

#include <check.h>
#include <math.h>
#include <stdlib.h>

#define ck_near(got, want, tol)                                                \
    do {                                                                       \
        double g_ = (got), w_ = (want);                                        \
        ck_assert_msg(fabs(g_ - w_) <= (tol), "%s = %.12g, expected %.12g",    \
                      #got, g_, w_);                                           \
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
