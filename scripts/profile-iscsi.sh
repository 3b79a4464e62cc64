#!/usr/bin/env bash
# profile-iscsi.sh — CPU cost per IO of the whole iSCSI path of `rscst run` (portal,
# gateway, simulator, driver, core), measured with a fixed client workload: fio's libiscsi
# engine, 4 KiB random reads on the null LUN (LUN 2 of scripts/bench.toml).
#
#   scripts/profile-iscsi.sh                  # QD 32, callgrind + syscalls
#   QD=1 IOS=5000 scripts/profile-iscsi.sh
#   PARTS=sys scripts/profile-iscsi.sh        # syscalls only (no valgrind)
#   KEEP=/tmp/cg.out scripts/profile-iscsi.sh # keep the callgrind profile
#
# Two runs, each against a fresh `rscst run --mode rtc`:
#  1. callgrind (PARTS=cg): collection toggled on the portal loop (`Server::run`, so
#     bring-up is outside), IOS commands (IOS=20000) after the login; printed as
#     instructions per IO split by component (scripts/callgrind-split-iscsi.py). Login and
#     logout are inside the window but cost well under 1% of it. Deterministic enough to
#     compare changes while the machine is busy (the batching, and so the figures, do
#     depend a little on timing).
#  2. syscalls (PARTS=sys): `rscst run` at full speed, `perf stat` on the
#     raw_syscalls/syscalls tracepoints of its process over SYS_IOS IOs (SYS_IOS=200000),
#     printed per IO, with the target's CPU time per IO (only meaningful on an idle
#     machine). Falls back to `strace -c -f` without perf.
# A benchmark, not a test: nothing asserts these numbers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
QD=${QD:-32}
BS=${BS:-4096}
IOS=${IOS:-20000}
SYS_IOS=${SYS_IOS:-200000}
PARTS=${PARTS:-cg sys}
PORT=${PORT:-3290}
FIO=${FIO:-$(bash scripts/peers/build-fio-libiscsi.sh)}
cargo build --quiet --release -p rscst-tools --bin rscst
bin=${CARGO_TARGET_DIR:-$root/target}/release/rscst
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
url="iscsi://127.0.0.1:$PORT/iqn.2025-01.org.rscst:bench/2"

start() { # how... : starts `rscst run` (prefixed by the given command), waits for the banner
  "$@" "$bin" run --config scripts/bench.toml --mode rtc --iscsi "127.0.0.1:$PORT" --stats 0 \
    >"$tmp/run.out" 2>"$tmp/run.err" &
  pid=$!
  for _ in $(seq 1 1200); do
    grep -q '^rscst: try:' "$tmp/run.out" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/run.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "rscst run did not come up" >&2
  exit 1
}

stop() {
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}

fio_ios() { # n -> runs fio for n IOs, prints the IOs done
  "$FIO" --name=prof --ioengine=libiscsi --filename="${url//:/\\:}" --rw=randread \
    --bs="$BS" --iodepth="$QD" --number_ios="$1" --size=1T --norandommap=1 --randrepeat=0 \
    --output-format=json --output="$tmp/fio.json" >/dev/null
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jobs"][0]["read"]["total_ios"])' "$tmp/fio.json"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "iSCSI path: fio libiscsi randread bs=$BS QD=$QD, null LUN, rscst run --mode rtc ($(uname -m), $(nproc) CPUs)"
for part in $PARTS; do
  case $part in
  cg)
    command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
    out=${KEEP:-$tmp/callgrind.out}
    start valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
      '--toggle-collect=*iscsi::net::Server::run*'
    n=$(fio_ios "$IOS")
    stop
    echo
    echo "== callgrind: $n IOs"
    python3 scripts/callgrind-split-iscsi.py "$out" "$root" "$n" "${TOP:-10}"
    ;;
  sys)
    start
    fio_ios 2000 >/dev/null # warm up: first login, caches
    ev=raw_syscalls:sys_enter
    for s in read recvfrom readv write writev sendto sendmsg epoll_wait epoll_pwait epoll_ctl futex sched_yield; do
      [ -e "/sys/kernel/tracing/events/syscalls/sys_enter_$s" ] && ev="$ev,syscalls:sys_enter_$s"
    done
    c0=$(cpu_ticks "$pid")
    if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
      perf stat -x, -e "$ev" -p "$pid" -o "$tmp/perf.txt" &
      tracer=$!
      sleep 0.5
      n=$(fio_ios "$SYS_IOS")
      kill -INT "$tracer"; wait "$tracer" || true
      c1=$(cpu_ticks "$pid")
      echo
      echo "== syscalls of rscst run: $n IOs (perf stat; includes one login and logout)"
      awk -F, -v n="$n" '$1 ~ /^[0-9]+$/ && $1 > 0 { sub(/^(raw_)?syscalls:sys_enter_?/, "", $3); if ($3 == "") $3 = "ALL";
        printf "  %-12s %9.3f per IO\n", $3, $1 / n }' "$tmp/perf.txt"
    else
      strace -c -f -p "$pid" -o "$tmp/strace.txt" &
      tracer=$!
      sleep 0.5
      n=$(fio_ios "$SYS_IOS")
      kill -INT "$tracer"; wait "$tracer" || true
      c1=$(cpu_ticks "$pid")
      echo
      echo "== syscalls of rscst run: $n IOs (strace -c; slows the target, batching differs)"
      awk -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ { printf "  %-12s %9.3f per IO\n", $NF, $4 / n }' "$tmp/strace.txt"
    fi
    hz=$(getconf CLK_TCK)
    python3 -c "import sys; t=(int(sys.argv[2])-int(sys.argv[1]))/int(sys.argv[3]); print(f'  target CPU: {t:.2f} s, {t/int(sys.argv[4])*1e6:.2f} µs per IO (wall-clock; needs an idle machine)')" "$c0" "$c1" "$hz" "$n"
    stop
    ;;
  *) echo "unknown part $part" >&2; exit 2 ;;
  esac
done
