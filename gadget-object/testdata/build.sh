#!/bin/sh
# Rebuilds the committed test fixtures. Run from anywhere; needs clang and llvm-strip
# (CLANG and LLVM_STRIP override the defaults). The fixtures are committed so that unit tests
# need no compiler; rebuild them only when a source here changes.
set -eu
cd "$(dirname "$0")"
CLANG="${CLANG:-clang-19}"
LLVM_STRIP="${LLVM_STRIP:-llvm-strip-19}"

build() { # build <source> <output> [extra clang flags...]
	b_src="$1"; b_out="$2"; shift 2
	"$CLANG" -target bpfel -g -O2 -Wall -Wno-unused-variable "$@" -c "$b_src" -o "$b_out"
}

for name in good minimal no_license bad_tracer bad_params bad_mapiter bad_iter; do
	build "$name.bpf.c" "$name.o"
	"$LLVM_STRIP" -g "$name.o"
done

# Variants of minimal: big-endian, DWARF left in, no BTF at all.
"$CLANG" -target bpfeb -g -O2 -c minimal.bpf.c -o minimal_be.o
"$LLVM_STRIP" -g minimal_be.o
"$CLANG" -target bpfel -g -O2 -c minimal.bpf.c -o minimal_dwarf.o
"$CLANG" -target bpfel -O2 -c minimal.bpf.c -o minimal_nobtf.o
