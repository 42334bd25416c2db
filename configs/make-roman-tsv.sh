#!/usr/bin/env bash
# Writes the example corpus for configs/tsv-example.ini: every number from 1
# to 3999 in digits, a tab, and the number in Roman numerals ("1994\tMCMXCIV").
# Usage: configs/make-roman-tsv.sh > configs/roman.tsv
awk 'BEGIN {
    split("1000 900 500 400 100 90 50 40 10 9 5 4 1", v, " ")
    split("M CM D CD C XC L XL X IX V IV I", r, " ")
    for (n = 1; n <= 3999; n++) {
        out = ""; m = n
        for (i = 1; i <= 13; i++) while (m >= v[i]) { out = out r[i]; m -= v[i] }
        printf "%d\t%s\n", n, out
    }
}'
