#!/usr/bin/env bash
# e2e.sh — the end-to-end check (./ci.sh e2e): `rscst run` (release build) served to
# real iSCSI initiators on 127.0.0.1.
#
#   1. libiscsi's tools: iscsi-ls, iscsi-inq, iscsi-readcapacity16
#   2. idle CPU of the target with no initiator connected (< 1 % of a core)
#   3. iscsi-test-cu --test=ALL (SANITIZE included) with the URL twice (multipath and
#      two-initiator tests), plus supplementary runs of the tests whose premise the ALL
#      run cannot meet: SCSI.ReadOnly against a second target's write-protected LU
#      (port+1, LUN 0), GetLBAStatus.UnmapSingle against its LU with 512-byte physical
#      blocks (LUN 1), and Sanitize.Reset alone; judged by scripts/conformance-gate.py
#      against scripts/conformance-allow.txt
#   4. fio with the libiscsi engine: a verified (crc32c) random write/read job
#   5. SIGTERM: the target stops cleanly
#
# Env: RSCST_E2E_PORT (3260), RSCST_E2E_MODE (rtc | threaded; default rtc),
#      RSCST_E2E_OUT (${TMPDIR:-/tmp}/rscst-e2e). Installs libiscsi-bin and fio's build
# dependencies with apt-get when run as root. Stops only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${RSCST_E2E_PORT:-3260}"
MODE="${RSCST_E2E_MODE:-rtc}"
OUT="${RSCST_E2E_OUT:-${TMPDIR:-/tmp}/rscst-e2e}"
IQN="iqn.2025-01.org.rscst:sim"
URL="iscsi://127.0.0.1:$PORT/$IQN/0"
RO_PORT=$((PORT + 1))
RO_URL="iscsi://127.0.0.1:$RO_PORT/iqn.2025-01.org.rscst:ro/0"
LBPPB1_URL="iscsi://127.0.0.1:$RO_PORT/iqn.2025-01.org.rscst:ro/1"
rm -rf "$OUT"; mkdir -p "$OUT"
say() { printf '\n--> %s\n' "$*"; }

if ! command -v iscsi-test-cu >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing libiscsi-bin"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends libiscsi-bin >/dev/null
  else
    echo "e2e: iscsi-test-cu missing (apt-get install libiscsi-bin) and not root: cannot run" >&2
    exit 1
  fi
fi

say "building rscst (release)"
cargo build --release -p rscst-tools --bin rscst
RSCST=target/release/rscst

say "fio with the libiscsi engine"
FIO="$(bash scripts/peers/build-fio-libiscsi.sh)"

say "starting rscst run ($MODE) on 127.0.0.1:$PORT"
"$RSCST" run --mode "$MODE" --iscsi "127.0.0.1:$PORT" --stats 5 \
  >"$OUT/rscst.out" 2>"$OUT/rscst.err" &
PID=$!
"$RSCST" run --config scripts/e2e-ro.toml --mode "$MODE" --iscsi "127.0.0.1:$RO_PORT" --stats 0 \
  >"$OUT/rscst-ro.out" 2>"$OUT/rscst-ro.err" &
RO_PID=$!
stop() { kill -TERM "$PID" "$RO_PID" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 300); do
  grep -q '^rscst: try:' "$OUT/rscst.out" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { cat "$OUT/rscst.out" "$OUT/rscst.err" >&2; echo "e2e: rscst run exited" >&2; exit 1; }
  sleep 0.2
done
grep -q '^rscst: try:' "$OUT/rscst.out" || { echo "e2e: rscst run did not come up" >&2; exit 1; }
cat "$OUT/rscst.out"

say "idle CPU (no initiator)"
bash scripts/idle-cpu.sh "$PID" 10 1

say "iscsi-ls / iscsi-inq / iscsi-readcapacity16"
iscsi-ls -s "iscsi://127.0.0.1:$PORT" | tee "$OUT/ls.txt"
grep -q "Target:$IQN" "$OUT/ls.txt"
grep -q "Lun:0" "$OUT/ls.txt"
iscsi-inq "$URL" | tee "$OUT/inq.txt"
grep -q "Vendor:RSCST" "$OUT/inq.txt"
iscsi-readcapacity16 "$URL" | tee "$OUT/rc16.txt"
grep -q "Total size:1073741824" "$OUT/rc16.txt"

say "fio: verified random write/read (crc32c)"
FN="$(printf '%s' "$URL" | sed 's/:/\\:/g')"
"$FIO" --name=verify --ioengine=libiscsi --filename="$FN" --rw=randwrite --bs=4k \
  --size=256m --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 \
  --randrepeat=0 --verify_state_save=0 --output="$OUT/fio.txt"
cat "$OUT/fio.txt"
grep -q "err= 0" "$OUT/fio.txt"
grep -q "READ:" "$OUT/fio.txt"

say "libiscsi conformance: iscsi-test-cu --test=ALL (URL twice, SANITIZE on)"
bash scripts/peers/conformance.sh -a -T 1200 -o "$OUT/all" "$URL" "$URL" || true
say "SCSI.ReadOnly against the write-protected LU"
for _ in $(seq 1 300); do grep -q '^rscst: try:' "$OUT/rscst-ro.out" 2>/dev/null && break; sleep 0.2; done
bash scripts/peers/conformance.sh -t SCSI.ReadOnly -o "$OUT/ro" "$RO_URL" || true
say "GetLBAStatus.UnmapSingle against an LU with LBPPB 1"
bash scripts/peers/conformance.sh -t SCSI.GetLBAStatus.UnmapSingle -o "$OUT/lbppb1" "$LBPPB1_URL" || true
say "Sanitize.Reset alone"
bash scripts/peers/conformance.sh -a -t SCSI.Sanitize.Reset -T 300 -o "$OUT/reset" "$URL" "$URL" || true
say "conformance gate"
python3 scripts/conformance-gate.py "$OUT/all/summary.txt" scripts/conformance-allow.txt \
  --extra "$OUT/ro/summary.txt" --extra "$OUT/lbppb1/summary.txt" --extra "$OUT/reset/summary.txt"

say "stopping rscst (SIGTERM)"
trap - EXIT
kill -TERM "$PID" "$RO_PID"
rc=0; wait "$PID" || rc=$?
wait "$RO_PID" || true
tail -3 "$OUT/rscst.out"
[ "$rc" = 0 ] || { echo "e2e: rscst run exited with $rc" >&2; exit 1; }
grep -q '^rscst: stopped' "$OUT/rscst.out"
say "e2e passed"
