#!/usr/bin/env bash
# idle-cpu.sh PID [SECONDS] [MAX_PERCENT] — CPU a process (all its threads) used over
# SECONDS (default 10) as a percentage of one core, from /proc/PID/stat (utime+stime);
# exits 1 when above MAX_PERCENT (default 1). For `rscst run` with no initiator
# connected: its pollers must sleep when idle.
set -euo pipefail
PID="${1:?usage: idle-cpu.sh PID [SECONDS] [MAX_PERCENT]}"
SECS="${2:-10}"
MAX="${3:-1}"
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
a=$(ticks); t0=$(date +%s.%N)
sleep "$SECS"
b=$(ticks); t1=$(date +%s.%N)
pct=$(awk -v a="$a" -v b="$b" -v hz="$HZ" -v t0="$t0" -v t1="$t1" \
  'BEGIN { printf "%.2f", (b - a) / hz / (t1 - t0) * 100 }')
echo "idle CPU of pid $PID over ${SECS}s: ${pct}% of one core (limit ${MAX}%)"
awk -v p="$pct" -v m="$MAX" 'BEGIN { exit !(p <= m) }'
