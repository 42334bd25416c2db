/* vmath.h: exp and erf for the ops' inner loops. The float build uses the
 * versions below, plain arithmetic that the compiler vectorises (libm's are
 * function calls, one element at a time); the double build, which gradcheck
 * uses, keeps libm's. Accuracy in float: exp within 2 ulp (Cephes' expf
 * polynomial), erf within 2.1e-7 absolute (a fit of erfc derived by
 * tools/fit_erf.py), below what float arithmetic around them loses anyway. */
#ifndef TX_VMATH_H
#define TX_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base.h"

#ifdef TX_DOUBLE
static inline tx_real tx_exp(tx_real x) { return exp(x); }
static inline tx_real tx_exp_nonpos(tx_real x) { return exp(x); }
static inline tx_real tx_erf(tx_real x) { return erf(x); }
#else
/* e^r for |r| <= ln2/2 (what is left of x once n = round(x·log2 e) is
 * taken out, e^x = 2^n · e^r), from a degree-6 polynomial. */
static inline float exp_reduced(float xc, float n) {
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * r * r + r + 1;
}

/* e^x, 2^n put straight into the exponent bits. Below -87.3 the result is
 * 0 (e^-inf = 0 keeps masked softmax entries exactly 0), above 88.7 +inf,
 * and NaN stays NaN (computed on 0 meanwhile: a NaN converted to an integer
 * would be undefined). */
static inline float tx_exp(float x) {
    float xc = x > 88.7f ? 88.7f : x < -87.3f ? -87.3f : x == x ? x : 0;
    float n = rintf(xc * 1.44269504088896341f);
    float y = exp_reduced(xc, n);
    /* n reaches 128 above x = 88.03, one past the largest exponent: scale
     * by 2^127 and then by 2 */
    float n1 = n > 127 ? 127 : n;
    int32_t bits = ((int32_t)n1 + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    y = y * scale * (1 + (n - n1));
    y = x > 88.7f ? INFINITY : x < -87.3f ? 0 : y;
    return x != x ? x : y;
}

/* tx_exp for the arguments softmax, cross-entropy, erf and GELU's slope
 * give it, x <= 0 (valid up to 88): the same bits as tx_exp, without the
 * overflow handling, and n rounded and put into the exponent by adding
 * 1.5·2^23 (the integer lands in the low bits of the sum) instead of
 * rintf and a conversion, which NaN would make undefined. A NaN argument
 * gives NaN through the polynomial. GELU's forward pass is a quarter
 * faster for it: the checks were a third of exp's chain. */
static inline float tx_exp_nonpos(float x) {
    float xc = x < -87.3f ? -87.3f : x;
    float m = xc * 1.44269504088896341f + 0x1.8p23f, n = m - 0x1.8p23f;
    float y = exp_reduced(xc, n);
    uint32_t bits; /* unsigned: what a NaN leaves there wraps, defined */
    memcpy(&bits, &m, sizeof bits);
    bits = (bits - 0x4B400000u + 127u) << 23; /* 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x < -87.3f ? 0 : y * scale;
}

/* erf x = 1 − erfc x for x >= 0, and odd, with erfc z = t·e^(−z² + P(u)),
 * t = 1/(1 + z/2), u = 2t − 1, P of degree 9 evaluated by Estrin's scheme
 * (four dependent multiply-adds; GELU's loop is bound by that chain). The
 * coefficients are this project's own fit, made by tools/fit_erf.py
 * (minimax on erf's absolute error, 1.6e-9 in double; its emulation of the
 * float evaluation stays within 2.1e-7, the test allows 2.5e-7). */
static inline float tx_erf(float x) {
    static const float a[10] = {-6.7179399272e-01f, 6.7264824150e-01f, 4.7227933585e-02f,
                                -4.5984844822e-02f, -1.3550588746e-02f, 1.7391433030e-02f,
                                -1.0122068307e-02f, 7.1084578704e-03f, -3.7694512669e-03f,
                                8.4488149290e-04f};
    float z = fabsf(x), t = 1 / (1 + 0.5f * z), u = 2 * t - 1;
    float u2 = u * u, u4 = u2 * u2;
    float p01 = a[1] * u + a[0], p23 = a[3] * u + a[2], p45 = a[5] * u + a[4],
          p67 = a[7] * u + a[6], p89 = a[9] * u + a[8];
    float p = ((p89 * u4 + (p67 * u2 + p45)) * u4) + (p23 * u2 + p01);
    float e = 1 - t * tx_exp_nonpos(p - z * z); /* p − z² < 1 */
    return x < 0 ? -e : e;
}
#endif

#endif
