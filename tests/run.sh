#!/usr/bin/env bash
# Runs every unit-test binary given, then the command-level tests
# (tests/cli_*.sh), and prints one closing line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0
for t in "$@"; do
    echo "== $t"
    out=$("$t" 2>&1); rc=$?
    echo "$out" | grep -v '^$'
    # Check prints "NN%: Checks: X, Failures: F, Errors: E".
    line=$(echo "$out" | grep -E 'Checks: [0-9]+' | tail -n 1)
    n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
    f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
    e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
    if [ -z "$line" ]; then n=1; f=1; e=0; fi
    passed=$((passed + n - f - e)); failed=$((failed + f + e))
    if [ $rc -ne 0 ] && [ $((f + e)) -eq 0 ]; then failed=$((failed + 1)); fi
done
for s in tests/cli_*.sh; do
    [ -e "$s" ] || continue
    echo "== $s"
    if bash "$s"; then passed=$((passed + 1)); else echo "FAILED: $s"; failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
