#!/usr/bin/env bash
# make-corpus.sh NAME OUT: writes a training corpus built from the files of
# installed Debian packages (`make corpora` installs them first), the same
# bytes on every machine with the same package versions.
#   fortunes  every English fortune file of `fortunes` and `fortunes-min`
#             (the regular files of /usr/share/games/fortunes that are not
#             .dat indexes, symlinks or the Chinese ones), concatenated in
#             name order: about 2.58 million characters, 113 distinct
#   tang      the Chinese poems of `fortunes-zh`: tang300 (Tang dynasty) then
#             song100 (Song), without their ANSI colour codes
# Written to OUT.tmp and renamed, so OUT is whole or absent.
set -euo pipefail
name=$1 out=$2
dir=/usr/share/games/fortunes
files() { # the package's files in $dir, regular, sorted by name
    dpkg -L "$@" | grep "^$dir/[^/]*$" | while read -r f; do
        if [ -f "$f" ] && [ ! -L "$f" ] && [ "${f%.dat}" = "$f" ]; then echo "$f"; fi
    done | LC_ALL=C sort
}
case $name in
fortunes) files fortunes fortunes-min | xargs cat > "$out.tmp" ;;
tang) cat "$dir/tang300" "$dir/song100" | sed 's/\x1b\[[0-9;]*m//g' > "$out.tmp" ;;
*) echo "make-corpus.sh: unknown corpus '$name' (fortunes or tang)" >&2; exit 2 ;;
esac
mv "$out.tmp" "$out"
