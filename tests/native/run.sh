#!/usr/bin/env bash
# Bit identity of every SIMD tier on two architectures, without an ARM machine.
#
# Builds tests/native/simd_digest.cpp (the pure-C++ core, no Python) natively
# and for arm64 (aarch64-linux-gnu-g++), runs the arm64 build under qemu-user,
# and checks that every tier of each run prints the same digest for every
# result (the program itself fails when a tier differs from scalar) and that
# the x86-64 and arm64 digests are the same. Natively it also runs
# divide_exact_check.cpp (compat's FMA division against the divider).
#
# Needs: g++ (native), and for the arm64 half g++-aarch64-linux-gnu and
# qemu-user (Debian: apt-get install g++-aarch64-linux-gnu qemu-user). Without
# them the arm64 half is reported as skipped, unless REQUIRE_ARM64=1 (CI).
# Usage: tests/native/run.sh [OUTDIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$(mktemp -d)}"
mkdir -p "$out"
# The flags of the package build (CMakeLists.txt) that matter for the bits.
flags=(-std=c++17 -O3 -ffp-contract=off -fno-math-errno -fopenmp -I"$root/csrc/include")

g++ "${flags[@]}" "$here/simd_digest.cpp" -o "$out/digest-native"
"$out/digest-native" > "$out/native.txt"
echo "native ($(uname -m)): $(cut -d' ' -f1 "$out/native.txt" | sort -u | tr '\n' ' ')- $(wc -l < "$out/native.txt") digests"

# compat's FMA division against the divider on tens of millions of hard and random cases
g++ "${flags[@]}" "$here/divide_exact_check.cpp" -o "$out/divide-check-native"
"$out/divide-check-native" 20000

if ! command -v aarch64-linux-gnu-g++ > /dev/null || ! command -v qemu-aarch64 > /dev/null; then
    if [ "${REQUIRE_ARM64:-0}" = 1 ]; then
        echo "arm64: aarch64-linux-gnu-g++ or qemu-aarch64 missing" >&2
        exit 1
    fi
    echo "arm64: skipped (install g++-aarch64-linux-gnu and qemu-user)"
    exit 0
fi
aarch64-linux-gnu-g++ "${flags[@]}" "$here/simd_digest.cpp" -o "$out/digest-arm64"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/digest-arm64" > "$out/arm64.txt"
echo "arm64 (qemu-user): $(cut -d' ' -f1 "$out/arm64.txt" | sort -u | tr '\n' ' ')- $(wc -l < "$out/arm64.txt") digests"
grep -q '^neon ' "$out/arm64.txt" || { echo "arm64: the NEON tier did not run" >&2; exit 1; }

# One digest per result name across every tier of both architectures.
cat "$out/native.txt" "$out/arm64.txt" | awk '
    { seen[$2] = seen[$2] " " $3; if (!($2 in first)) first[$2] = $3; else if (first[$2] != $3) bad[$2] = 1 }
    END { n = 0; for (k in bad) { print "DIFFERS across tiers/architectures: " k ":" seen[k] > "/dev/stderr"; n++ }
          if (n) exit 1; print length(first) " results, the same digest on every tier of both architectures" }'
