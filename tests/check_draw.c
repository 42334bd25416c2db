/* check_draw.c: the pictures behind the tools: PNG output, the colour map
 * and the training curves. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define STB_IMAGE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

#include "../draw/image.h"
#include "../draw/plot.h"

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- pictures ------------------------------------------------------------ */

START_TEST(test_png) {
    make_dir();
    char path[128];
    snprintf(path, sizeof path, "%s/a.png", test_dir);
    const unsigned char bg[3] = {10, 20, 30}, fg[3] = {200, 100, 0};
    tx_image im;
    tx_image_new(&im, 37, 23, bg);
    tx_image_rect(&im, 30, 20, 100, 100, fg); /* clipped to 7 × 3 */
    tx_err err;
    ck_assert_int_eq(tx_image_save_png(&im, path, &err), TX_OK);
    int w, h, ch;
    unsigned char *px = stbi_load(path, &w, &h, &ch, 3);
    ck_assert_ptr_nonnull(px);
    ck_assert_int_eq(w, 37);
    ck_assert_int_eq(h, 23);
    ck_assert_int_eq(ch, 3);
    ck_assert_mem_eq(px, bg, 3);
    ck_assert_mem_eq(px + (22 * 37 + 36) * 3, fg, 3);
    ck_assert_mem_eq(px + (20 * 37 + 30) * 3, fg, 3);
    ck_assert_mem_eq(px + (19 * 37 + 30) * 3, bg, 3);
    stbi_image_free(px);
    /* A directory that does not exist: an error and no file. */
    snprintf(path, sizeof path, "%s/none/a.png", test_dir);
    ck_assert_int_eq(tx_image_save_png(&im, path, &err), TX_EIO);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    tx_image_free(&im);
    remove_dir();
}
END_TEST

static double srgb_to_linear(unsigned char c) {
    double x = c / 255.0;
    return x <= 0.04045 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4);
}

/* Perceptual order: relative luminance (hence L*) rises with t, from dark to
 * bright, and neighbouring colours differ. */
START_TEST(test_colormap) {
    double prev = -1;
    for (int i = 0; i <= 64; i++) {
        unsigned char c[3];
        tx_colormap(i / 64.0, c);
        double Y = 0.2126 * srgb_to_linear(c[0]) + 0.7152 * srgb_to_linear(c[1]) +
                   0.0722 * srgb_to_linear(c[2]);
        ck_assert_msg(Y > prev, "luminance not increasing at t = %g", i / 64.0);
        if (i == 0) ck_assert(Y < 0.03);
        if (i == 64) ck_assert(Y > 0.75);
        prev = Y;
    }
    unsigned char lo[3], hi[3];
    tx_colormap(-3, lo);
    tx_colormap(0, hi);
    ck_assert_mem_eq(lo, hi, 3);
}
END_TEST

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_plot) {
    make_dir();
    char csv[128], png[128];
    snprintf(csv, sizeof csv, "%s/metrics.csv", test_dir);
    snprintf(png, sizeof png, "%s/curves.png", test_dir);
    const char *head = "step,lr,train_loss,grad_norm,tokens_per_s,valid_loss,valid_accuracy,elapsed_s\n";
    char text[1024];
    snprintf(text, sizeof text, "%s1,1e-05,2.5,1.2,100.0,,,0.50\n"
                                "50,0.0005,0.9,0.8,900.5,1.1,0.250000,3.00\n"
                                "100,0.001,0.01,0.3,950.0,0.02,0.990000,6.00\n", head);
    write_file(csv, text);
    tx_err err;
    ck_assert_msg(tx_plot_metrics(test_dir, &err) == TX_OK, "%s", err.msg);
    int w, h, ch;
    unsigned char *px = stbi_load(png, &w, &h, &ch, 3);
    ck_assert_ptr_nonnull(px);
    ck_assert_int_eq(w, 1000);
    ck_assert_int_eq(h, 420);
    stbi_image_free(px);
    remove(png);
    snprintf(text, sizeof text, "%s1,1e-05,2.5,1.2,100.0,,,0.50\n2,1e-05,x,1,1,,,1\n", head);
    write_file(csv, text);
    ck_assert_int_eq(tx_plot_metrics(test_dir, &err), TX_EINPUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "metrics.csv:3:"));
    snprintf(text, sizeof text, "%s1,1e-05,2.5,1.2,100.0,0.5,,0.50\n", head);
    write_file(csv, text);
    ck_assert_int_eq(tx_plot_metrics(test_dir, &err), TX_EINPUT);
    write_file(csv, head);
    ck_assert_int_eq(tx_plot_metrics(test_dir, &err), TX_EINPUT);
    ck_assert(!exists(png));
    remove(csv);
    ck_assert_int_eq(tx_plot_metrics(test_dir, &err), TX_EIO);
    remove_dir();
}
END_TEST

Suite *suite(void) {
    Suite *s = suite_create("draw");
    TCase *tc = tcase_create("draw");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_png);
    tcase_add_test(tc, test_colormap);
    tcase_add_test(tc, test_plot);
    suite_add_tcase(s, tc);
    return s;
}

TX_TEST_MAIN
