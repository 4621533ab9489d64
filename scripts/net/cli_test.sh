#!/bin/sh
# End-to-end test of `nhash model` in a temporary directory (run by ctest as net_cli):
# import the committed test model, check the summary, hash two bundled samples with both
# runners and compare with onnxruntime's hashes (tests/data/net/expected.tsv, at most one bit
# apart), and make sure a truncated model file is refused with a message.
# usage: cli_test.sh NHASH SOURCE_DIR
set -eu
NHASH=$1
SRC=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# The 7 MB ONNX is made offline by scripts/net/make_fixtures.py and not committed; without it
# the committed binary16 .nhm of the same network stands in.
if [ -f "$SRC/models/nh_test.onnx" ]; then
    "$NHASH" model import "$SRC/models/nh_test.onnx" "$SRC/models/nh_test_seed.dat" -o "$T/m.nhm" \
        --name nh_test --version 1 --f16 > "$T/import.txt"
else
    cp "$SRC/models/nh_test.nhm" "$T/m.nhm"
fi
"$NHASH" model info "$T/m.nhm" > "$T/info.txt"
grep -q '^hash: *96 bits' "$T/info.txt"
grep -q '^output: *128 (128x1x1)' "$T/info.txt"
grep -q '^weights: *1800014 floats' "$T/info.txt"

# Bit distance of two 24-digit hex strings.
hamming() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        h = "0123456789abcdef"; d = 0
        for (i = 1; i <= 24; i++) {
            x = index(h, substr(a, i, 1)) - 1; y = index(h, substr(b, i, 1)) - 1
            for (k = 0; k < 4; k++) { if ((x % 2) != (y % 2)) d++; x = int(x / 2); y = int(y / 2) }
        }
        print d }'
}

for backend in opencl ref; do
    "$NHASH" model hash --backend "$backend" "$T/m.nhm" "$SRC/samples/chelsea.png" \
        "$SRC/samples/coffee.png" > "$T/$backend.txt"
    for name in chelsea coffee; do
        got=$(awk -F'\t' -v n="$name" '$1 ~ n".png$" {print $2}' "$T/$backend.txt")
        want=$(awk -F'\t' -v n="$name" '$1 == n {print $4}' "$SRC/tests/data/net/expected.tsv")
        d=$(hamming "$got" "$want")
        echo "$backend $name $got (onnxruntime $want): $d bit(s)"
        [ "$d" -le 1 ]
    done
done

# base64 and bits formats agree with hex.
"$NHASH" model hash --backend ref --format base64 "$T/m.nhm" "$SRC/samples/chelsea.png" > "$T/b64.txt"
"$NHASH" model hash --backend ref --format bits "$T/m.nhm" "$SRC/samples/chelsea.png" > "$T/bits.txt"
hex=$(awk -F'\t' '{print $2}' "$T/ref.txt" | head -1)
b64=$(awk -F'\t' '{print $2}' "$T/b64.txt")
[ "$(printf '%s' "$b64" | base64 -d | od -An -tx1 | tr -d ' \n')" = "$hex" ]
[ "$(awk -F'\t' '{print length($2)}' "$T/bits.txt")" = 96 ]

# A truncated model is refused with a reason, not a crash.
head -c 5000 "$T/m.nhm" > "$T/bad.nhm"
if "$NHASH" model info "$T/bad.nhm" 2> "$T/err.txt"; then
    echo "truncated model accepted"; exit 1
fi
grep -q 'not a valid model' "$T/err.txt"

# The shipped default model: the file is the one the fixture was made from (fingerprint), and
# both runners agree with onnxruntime's hashes of every bundled sample to within one bit
# (tests/data/net/default_expected.tsv, written by scripts/train/export.py --fixture).
EXP="$SRC/tests/data/net/default_expected.tsv"
fp=$("$NHASH" model info "$SRC/models/default.nhm" | awk '/^fingerprint:/ {print $2}')
want_fp=$(awk '/^# fingerprint / {print $3}' "$EXP")
echo "default model fingerprint $fp (fixture $want_fp)"
[ -n "$fp" ] && [ "$fp" = "$want_fp" ]
grep -v '^#' "$EXP" > "$T/dexp.tsv"
[ "$(wc -l < "$T/dexp.tsv")" -ge 5 ]
for backend in opencl ref; do
    ( cd "$SRC/samples" && "$NHASH" model hash --backend "$backend" "$SRC/models/default.nhm" \
        $(cut -f1 "$T/dexp.tsv") ) > "$T/d_$backend.txt"
    while IFS="$(printf '\t')" read -r name want score; do
        got=$(awk -F'\t' -v n="$name" '$1 == n {print $2}' "$T/d_$backend.txt")
        d=$(hamming "$got" "$want")
        echo "default $backend $name $got (onnxruntime $want, min |score| $score): $d bit(s)"
        [ "$d" -le 1 ]
    done < "$T/dexp.tsv"
done
echo "nhash model CLI: ok"
