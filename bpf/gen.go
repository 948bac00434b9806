package bpf

// Rebuild with `make generate` (needs clang and libbpf headers); the output
// (governor_bpfel.go, governor_bpfel.o) is committed so builds need no clang.
// -mcpu=v3 and fixed flags keep clang's output deterministic for
// `make generate-check`.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -mcpu=v3 -Wall -Werror -Wno-unused-variable" -target bpfel -go-package bpf -type cg_stats -type pair_key -type oom_event -type watch -type alert governor c/governor.bpf.c -- -I./c
//go:generate go tool bpf2go -cc clang -cflags "-O2 -mcpu=v3 -Wall -Werror -Wno-unused-variable" -target bpfel -go-package bpf cgmoves c/cgmoves.bpf.c -- -I./c
