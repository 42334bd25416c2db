#!/usr/bin/env bash
# The installed library as a C programmer meets it: `make install` into a
# fresh prefix, the three examples built from outside the source tree with
# pkg-config and run, the shared library's soname, the private headers left
# out, every public function in docs/api.md, the man page rendering with
# every command, the installed program finding its double twin, and
# `make uninstall` taking it all away. Installs the normal build (build/),
# whatever build the other tests run.
set -u
. tests/lib.sh
prefix="$tmp/prefix"
# make exports its command-line variables (make sanitize's SANITIZE=1 and
# BUILD, NO_OMP=1, ...): drop them, to install the normal build
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SANITIZE -u BUILD -u NO_OMP -u NO_MPI -u FUZZ \
        make -s --no-print-directory "$@" PREFIX="$prefix"
}
check "make install into a fresh prefix" mk install > "$tmp/install.log" 2>&1 || cat "$tmp/install.log"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

# ---- what is installed ----------------------------------------------------------------
check "pkg-config knows tapeformer $(pkg-config --modversion tapeformer 2> /dev/null)" \
    test "$(pkg-config --modversion tapeformer)" = "$(sed -n 's/^#define TX_VERSION "\(.*\)"/\1/p' core/base.h)"
check "the shared library has a soname with the major version" \
    grep -q 'SONAME.*\[libtapeformer\.so\.1\]' <(readelf -d "$prefix/lib/libtapeformer.so")
check "the umbrella header and the public headers are installed" \
    test -f "$prefix/include/tapeformer/tapeformer.h" -a -f "$prefix/include/tapeformer/core/tape.h"
check "private headers are not (internal.h, vmath.h)" \
    test -z "$(find "$prefix/include" -name internal.h -o -name vmath.h)"
missing=$(grep -ho '\btx_[a-z0-9_]*(' $(find "$prefix/include/tapeformer" -name '*.h') | tr -d '(' |
          sort -u | while read -r f; do grep -qE "\`$f[\`(]" docs/api.md || echo "$f"; done)
check "every function of the installed headers is in docs/api.md${missing:+ (missing: $missing)}" \
    test -z "$missing"
check "the installed program names its version" \
    grep -q "^tapeformer $(pkg-config --modversion tapeformer) " <("$prefix/bin/tapeformer" --version)
check "the installed program runs its double twin (gradcheck)" \
    "$prefix/bin/tapeformer" gradcheck add > /dev/null
man -l "$prefix/share/man/man1/tapeformer.1" > "$tmp/man.txt" 2> "$tmp/man.err"
for c in train generate sample score eval export attention plot gradcheck; do
    grep -q "^   $c\$" "$tmp/man.txt" || echo "man page: no section for $c" >> "$tmp/man.err"
done
check "man -l renders tapeformer(1) with a section for every command" \
    test -s "$tmp/man.txt" -a ! -s "$tmp/man.err"

# ---- the examples, built outside the source tree ----------------------------------------
mkdir "$tmp/ex"
cp examples/*.c "$tmp/ex/"
(
    cd "$tmp/ex" || exit 1
    cc -O2 -Wall -Wextra -Werror mlp.c $(pkg-config --cflags --libs tapeformer) -lm -o mlp &&
    cc -O2 -Wall -Wextra -Werror seq2seq.c $(pkg-config --cflags --libs tapeformer) -o seq2seq &&
    cc -O2 -Wall -Wextra -Werror custom_op.c $(pkg-config --cflags --libs tapeformer64) -lm -o custom_op
) > "$tmp/cc.log" 2>&1
check "the examples build with pkg-config (mlp, seq2seq: tapeformer; custom_op: tapeformer64)" \
    test -x "$tmp/ex/mlp" -a -x "$tmp/ex/seq2seq" -a -x "$tmp/ex/custom_op" || cat "$tmp/cc.log"
export LD_LIBRARY_PATH="$prefix/lib"
for e in mlp custom_op seq2seq; do
    out=$("$tmp/ex/$e" 2>&1); rc=$?
    echo "  $e: $(tail -n 1 <<< "$out")"
    case $e in
    mlp) check "mlp learns the two spirals (>= 95% of fresh points)" test $rc -eq 0 ;;
    custom_op) check "custom_op: RMSNorm passes gradcheck" \
        test $rc -eq 0 -a -n "$(grep ' 0 outside' <<< "$out")" ;;
    seq2seq) check "seq2seq learns to reverse (>= 90% exact match) and decodes" \
        test $rc -eq 0 -a -n "$(grep -E '^3 1 +-> 1 3$' <<< "$out")" ;;
    esac
done
check "the mlp example runs from the shared library" \
    grep -q "$prefix/lib/libtapeformer.so.1" <(ldd "$tmp/ex/mlp")

# ---- uninstall ------------------------------------------------------------------------
mk uninstall > /dev/null 2>&1
check "make uninstall leaves no file behind" test -z "$(find "$prefix" -type f -o -type l)"
exit $fail
