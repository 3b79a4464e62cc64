#!/usr/bin/env bash
# bench-vs-tgtd.sh — `rscst run` and STGT's tgtd side by side, with the same client
# (scripts/peers/bench-iscsi.sh: fio's libiscsi engine and iscsi-perf) on the same LUN
# kinds, measured in turns on an otherwise idle machine, and the ratios rscst / tgtd.
#
#   scripts/bench-vs-tgtd.sh                 # 10 s runs, 3 reps, both LUN kinds
#   RUNTIME=3 REPS=1 scripts/bench-vs-tgtd.sh   # quick look
#   PIN=same scripts/bench-vs-tgtd.sh        # client and targets on CPU 0 (QD1 latency)
#   ONLY=rr4k_qd32,rr4k_qd1 LUNS=null scripts/bench-vs-tgtd.sh
#   WAIT_QUIET=0 ...                         # do not wait for an idle machine (noisy numbers)
#
# Both targets run side by side for the whole script and are measured in turns: each
# repetition runs every workload against rscst and then against tgtd (one fio at a time,
# the idle target using ~0.1 % of a core), so both see the same minutes of a shared host
# (the same binary's figures swing by up to 2x between minutes on a VM) and the ratios
# compare like with like. The medians are over the repetitions.
#
# Both targets get a 1 GiB RAM-class LU (tgtd: rdwr on /dev/shm; rscst: RAM LU) as LUN 1
# and a null LU as LUN 2. The table gives, per workload and LUN: IOPS, mean latency and
# IOs per target CPU-second for each target, and the ratios. The issue's targets (null
# LUN): IOs per target CPU-second >= 3x tgtd, IOPS at 4 KiB QD32 >= 1.3x tgtd, QD1
# latency <= 0.6x tgtd. A benchmark, not a test: it prints, it does not fail on numbers.
# Output: ${OUT:-${TMPDIR:-/tmp}/rscst-vs-tgtd-DATE}/ (JSON per run, table.md).
# Needs root (tgtd), libiscsi-bin, tgt, and a libiscsi-capable fio (built on demand).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME="${RUNTIME:-10}"
REPS="${REPS:-3}"
PIN="${PIN:-none}"
LUNS="${LUNS:-null ram}"
ONLY="${ONLY:-rr4k_qd1,rr4k_qd32,rr4k_qd128,rr512_qd1,sr128k_qd8,sw128k_qd8}"
MODE="${MODE:-rtc}"
OUT="${OUT:-${TMPDIR:-/tmp}/rscst-vs-tgtd-$(date +%Y%m%d-%H%M%S)}"
RPORT=3270
TPORT=3271
mkdir -p "$OUT"
say() { printf '\n==> %s\n' "$*" >&2; }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  command -v tgtd >/dev/null || need+=(tgt)
  command -v iscsi-perf >/dev/null || need+=(libiscsi-bin)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
export FIO="${FIO:-$(bash scripts/peers/build-fio-libiscsi.sh)}"

say "building rscst (release)"
cargo build --quiet --release -p rscst-tools --bin rscst
RSCST=target/release/rscst

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  STATE_DIR="$OUT/tgt" bash scripts/peers/tgtd-stop.sh >/dev/null 2>&1 || true
}
trap cleanup EXIT

bench() { # label pid url json
  bash scripts/peers/bench-iscsi.sh --pid "$2" --pin "$PIN" --runtime "$RUNTIME" --reps 1 \
    --only "$ONLY" --tool fio --wait-quiet "${WAIT_QUIET:-60}" --label "$1" --out "$OUT/raw-$1" --json "$4" "$3" \
    >"$OUT/$1.md" 2>"$OUT/$1.log"
  cat "$OUT/$1.md" >&2
}

say "rscst run ($MODE) on 127.0.0.1:$RPORT"
"$RSCST" run --config scripts/bench.toml --mode "$MODE" --iscsi "127.0.0.1:$RPORT" --stats 0 \
  >"$OUT/rscst.out" 2>"$OUT/rscst.err" &
RPID=$!
pids+=("$RPID")
for _ in $(seq 1 300); do
  grep -q '^rscst: try:' "$OUT/rscst.out" 2>/dev/null && break
  kill -0 "$RPID" 2>/dev/null || { cat "$OUT/rscst.err" >&2; exit 1; }
  sleep 0.2
done
RIQN="iqn.2025-01.org.rscst:bench"

say "tgtd on 127.0.0.1:$TPORT"
PORTAL="127.0.0.1:$TPORT" STATE_DIR="$OUT/tgt" FILL=random bash scripts/peers/tgtd-start.sh >"$OUT/tgtd-start.txt"
eval "$(grep -E '^(TGTD_PID|URL_RDWR|URL_NULL)=' "$OUT/tgtd-start.txt")"

for rep in $(seq 1 "$REPS"); do
  for lun in $LUNS; do
    n=1; [ "$lun" = null ] && n=2
    say "repetition $rep/$REPS, $lun LUN: rscst, then tgtd"
    bench "rscst-$lun-r$rep" "$RPID" "iscsi://127.0.0.1:$RPORT/$RIQN/$n" "$OUT/rscst-$lun-r$rep.json"
    url="$URL_RDWR"; [ "$lun" = null ] && url="$URL_NULL"
    bench "tgtd-$lun-r$rep" "$TGTD_PID" "$url" "$OUT/tgtd-$lun-r$rep.json"
  done
done
kill -TERM "$RPID"; wait "$RPID" 2>/dev/null || true

python3 - "$OUT" "$LUNS" "$MODE" "$PIN" <<'PY' | tee "$OUT/table.md"
import glob, json, os, statistics, sys
out, luns, mode, pin = sys.argv[1], sys.argv[2].split(), sys.argv[3], sys.argv[4]
def load(name):
    rows = {}
    for p in sorted(glob.glob(os.path.join(out, name + "-r*.json"))):
        with open(p) as f:
            d = json.load(f)
        for s in d.get("samples", []):
            if s.get("tool", "fio") != "fio":
                continue
            rows.setdefault(s["workload"], []).append(s)
    return rows
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def f(x, unit=""):
    if x is None: return "-"
    return f"{x:,.0f}{unit}" if x >= 100 else f"{x:.1f}{unit}"
def ratio(a, b):
    return "-" if a is None or b in (None, 0) else f"{a / b:.2f}x"
print(f"# rscst run ({mode}) vs tgtd — same client (fio libiscsi), pin={pin}, {os.uname().nodename}, {os.cpu_count()} CPUs")
print()
print("| LUN | workload | rscst IOPS | tgtd IOPS | ratio | rscst lat µs | tgtd lat µs | ratio | rscst IOs/CPU-s | tgtd IOs/CPU-s | ratio |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for lun in luns:
    r, t = load(f"rscst-{lun}"), load(f"tgtd-{lun}")
    for w in r:
        if w not in t: continue
        ri = med(s.get("iops") for s in r[w]); ti = med(s.get("iops") for s in t[w])
        rl = med(s.get("lat_us") for s in r[w]); tl = med(s.get("lat_us") for s in t[w])
        rc = med(s.get("ios_per_tgt_cpu_s") for s in r[w]); tc = med(s.get("ios_per_tgt_cpu_s") for s in t[w])
        print(f"| {lun} | {w} | {f(ri)} | {f(ti)} | {ratio(ri, ti)} | {f(rl)} | {f(tl)} | {ratio(rl, tl)} | {f(rc)} | {f(tc)} | {ratio(rc, tc)} |")
PY
echo "results in $OUT" >&2
