#!/usr/bin/env bash
# Instructions per 512-byte READ spent in the driver and the core, measured with
# callgrind on `rscst bench --deterministic` (one thread, virtual clock, same commands
# every run), printed for the driver, the core and both, with the simulator's cost per
# command (the bench's ceiling) and the hottest functions of each.
#
#   scripts/callgrind-read512.sh                 # 20,000 READs of 512 B at QD 1
#   N=50000 QD=32 BS=4096 scripts/callgrind-read512.sh
#   KEEP=/tmp/cg.out scripts/callgrind-read512.sh  # keep the profile for callgrind_annotate
#
# Collection is toggled on `rscst::bench::run::stepped_window` (the measured window:
# bring-up, logins and the baseline are outside it), and the profile is split by
# scripts/callgrind-split.py (source file of each instruction, inlined code included;
# shared code — rscst-fw, rscst-hba, std, libc — goes to whoever called it).
# A benchmark, not a test: the target is <= 1,000 instructions per command for
# driver + core.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${N:-20000}
qd=${QD:-1}
bs=${BS:-512}
rp=${READ_PERCENT:-100}
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
cargo build --quiet --release -p rscst-tools --manifest-path "$root/Cargo.toml"
bin=${CARGO_TARGET_DIR:-$root/target}/release/rscst
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=${KEEP:-$tmp/callgrind.out}
valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
    '--toggle-collect=*stepped_window*' \
    "$bin" bench --deterministic --commands "$n" --bs "$bs" --qd "$qd" \
    --read-percent "$rp" --no-verify --quiet --json >"$tmp/bench.json" 2>"$tmp/valgrind.log" || {
    cat "$tmp/valgrind.log" >&2
    exit 1
}
cmds=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["commands"])' "$tmp/bench.json")
echo "rscst bench --deterministic: $cmds commands of $bs B, QD $qd, $rp% reads (callgrind, $(uname -m))"
python3 "$root/scripts/callgrind-split.py" "$out" "$root" "$cmds" "${TOP:-12}"
