#!/usr/bin/env python3
"""fit_erf.py: derives the coefficients of the float build's erf
(core/vmath.h) from Python's math.erfc; standard library only.

The approximation: for z = |x|, t = 1/(1 + z/2),
    erfc(z) = t * exp(-z^2 + P(t)),   P a polynomial of degree DEGREE in t,
and erf(x) = sign(x) * (1 - erfc(z)). t runs over (0, 1] as z runs over
[0, inf), and P(t) = ln(erfc(z)/t) + z^2 is smooth there, so a polynomial
fits it well. What matters in use is the absolute error of erf, that is
erfc(z) * |P(t) - P*(t)|, so P is fitted to minimise the largest weighted
error over a dense grid: Lawson's iteration, weighted least squares whose
weights grow where the error is largest, converging to the minimax fit.
P is fitted as a sum of Chebyshev polynomials in u = 2t - 1 and evaluated
in powers of u, not of t: in float the powers of t lose ten times more to
cancellation (terms up to 17 in size summing to about 1), those of u have
terms below 1. C evaluates them by Estrin's scheme, whose chain of
dependent operations is four multiply-adds deep (Clenshaw's recurrence on
the Chebyshev sum is eighteen, and GELU's loop waited on it).

Run: python3 tools/fit_erf.py   prints the coefficients a0..a9 of P in
powers of u and the largest absolute error on erf, of the fit in double
and of the float evaluation (emulated with rounding after every
operation); core/vmath.h holds them.
"""
import math
import struct

DEGREE = 9
ZMAX = 10.0  # erfc(10) ~ 2e-45: below every float, erf is 1 beyond


def grid(n=4000):
    """z points, denser where erfc changes fastest, and their t."""
    zs = [ZMAX * (i / (n - 1)) ** 1.5 for i in range(n)]
    return zs, [1 / (1 + z / 2) for z in zs]


def target(z, t):
    return math.log(math.erfc(z) / t) + z * z


def cheb(t, n):
    """T_0..T_n at u = 2t - 1."""
    u = 2 * t - 1
    out = [1.0, u]
    while len(out) <= n:
        out.append(2 * u * out[-1] - out[-2])
    return out[:n + 1]


def solve(a, b):
    """a x = b by Gaussian elimination with partial pivoting (small, dense)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        for r in range(c + 1, n):
            f = m[r][c] / m[c][c]
            for k in range(c, n + 1):
                m[r][k] -= f * m[c][k]
    x = [0.0] * n
    for r in reversed(range(n)):
        x[r] = (m[r][n] - sum(m[r][k] * x[k] for k in range(r + 1, n))) / m[r][r]
    return x


def fit():
    zs, ts = grid()
    ys = [target(z, t) for z, t in zip(zs, ts)]
    scale = [math.erfc(z) for z in zs]  # d erf = erfc * d P
    basis = [cheb(t, DEGREE) for t in ts]
    lw = [1.0 / len(zs)] * len(zs)  # Lawson weights
    for _ in range(200):
        w = [l * s * s for l, s in zip(lw, scale)]
        ata = [[sum(w[i] * basis[i][r] * basis[i][c] for i in range(len(zs)))
                for c in range(DEGREE + 1)] for r in range(DEGREE + 1)]
        atb = [sum(w[i] * basis[i][r] * ys[i] for i in range(len(zs))) for r in range(DEGREE + 1)]
        coef = solve(ata, atb)
        err = [abs(s * (sum(c * b for c, b in zip(coef, bi)) - y))
               for s, bi, y in zip(scale, basis, ys)]
        total = sum(l * e for l, e in zip(lw, err))
        lw = [l * e / total for l, e in zip(lw, err)]
    return coef, max(err)


def f32(x):
    return struct.unpack('f', struct.pack('f', x))[0]


def power(coef):
    """The Chebyshev sum sum c_k T_k(u) as coefficients of u^0..u^n."""
    n = len(coef)
    tk = [[1.0] + [0.0] * (n - 1), [0.0, 1.0] + [0.0] * (n - 2)]
    while len(tk) < n:  # T_k+1 = 2u T_k - T_k-1
        tk.append([2 * (tk[-1][j - 1] if j else 0.0) - tk[-2][j] for j in range(n)])
    return [sum(c * t[j] for c, t in zip(coef, tk)) for j in range(n)]


def fma32(a, b, c):
    return f32(a * b + c)  # the product is exact in double, as in a float FMA


def erf_float(x, a):
    """erf as core/vmath.h computes it, rounding to float after each step:
    P(u) by Estrin's scheme from the float coefficients a."""
    a = [f32(c) for c in a]
    z = abs(x)
    t = f32(1 / f32(1 + f32(0.5 * z)))
    u = f32(f32(2 * t) - 1)
    u2 = f32(u * u)
    u4 = f32(u2 * u2)
    p = [fma32(a[j + 1], u, a[j]) for j in range(0, 10, 2)]
    q03, q47 = fma32(p[1], u2, p[0]), fma32(p[3], u2, p[2])
    P = fma32(fma32(p[4], u4, q47), u4, q03)
    e = f32(1 - f32(t * f32(math.exp(f32(P - f32(z * z))))))
    return -e if x < 0 else e


if __name__ == '__main__':
    coef, err = fit()
    a = power(coef)
    xs = [f32(-7 + 14 * i / 99999) for i in range(100000)]
    worst = max(abs(erf_float(x, a) - math.erf(x)) for x in xs)
    print('degree %d: largest |erf error| %.3g (fit, double), %.3g (float evaluation)'
          % (DEGREE, err, worst))
    for k, c in enumerate(a):
        print('a%d = %.10e' % (k, c))
