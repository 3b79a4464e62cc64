#!/usr/bin/env bash
# ci.sh — the one CI script (README: "run the tests"). Subcommands run in order:
#
#   ./ci.sh            everything below (what .ci/run does)
#   ./ci.sh fmt        cargo fmt --check
#   ./ci.sh clippy     clippy -D warnings, all targets, per feature set
#   ./ci.sh test       cargo-nextest (falls back to cargo test) + doctests
#   ./ci.sh doc        cargo doc with warnings denied
#   ./ci.sh nostd      thumbv7em-none-eabihf builds of every no_std crate and of firmware/
#   ./ci.sh fuzz       30 s per fuzz target when a nightly toolchain and cargo-fuzz exist
#   ./ci.sh e2e        `rscst run` served to real initiators: libiscsi tools, the
#                      iscsi-test-cu conformance suite (allow-list gated), fio verify,
#                      idle CPU (scripts/e2e.sh)
#
# It installs what it needs (rustup targets; Debian packages when run as root
# with apt-get available) and never needs anything else from the machine.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUSTFLAGS="${RUSTFLAGS:-}"

NOSTD_CRATES=(rscst-fw rscst-core rscst-hba rscst-qla)
# Feature sets checked explicitly (defmt needs a global logger, so it is only
# ever built for the firmware target, never linked on the host).
FEATURE_MATRIX=(
  "-p rscst-core --no-default-features"
  "-p rscst-core --features std,log"
  "-p rscst-hba --no-default-features"
  "-p rscst-hba --features std"
  "-p rscst-hba --features uring"
  "-p rscst-qla --features log"
)

step() { printf '\n==> %s\n' "$*"; }

# Debian packages the tests use: tshark (the simulator's pcap check, sim/tests/
# pcap_tshark.rs, skips without it) and libiscsi-bin (the iSCSI tool tests and e2e).
# Installed when running as root with apt-get; otherwise those tests say they skip.
deps() {
  local missing=()
  command -v tshark >/dev/null 2>&1 || missing+=(tshark)
  command -v iscsi-test-cu >/dev/null 2>&1 || missing+=(libiscsi-bin)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "not root: ${missing[*]} missing, their tests skip"
  fi
}

need_target() {
  rustup target list --installed 2>/dev/null | grep -qx thumbv7em-none-eabihf ||
    rustup target add thumbv7em-none-eabihf
}

do_fmt() { step "fmt"; cargo fmt --all -- --check; }

do_clippy() {
  step "clippy (workspace, all targets)"
  cargo clippy --workspace --all-targets -- -D warnings
  for fs in "${FEATURE_MATRIX[@]}"; do
    step "clippy $fs"
    # shellcheck disable=SC2086
    cargo clippy $fs --all-targets -- -D warnings
  done
}

do_test() {
  deps
  step "tests"
  if command -v cargo-nextest >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
  else
    cargo test --workspace --no-fail-fast
  fi
  step "soak: 1,000,000 verified commands through sim + driver + core with faults (release)"
  cargo test -p rscst-hil --release --test soak -- --ignored
  step "doctests"
  cargo test --workspace --doc
}

do_doc() {
  step "doc"
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
}

do_nostd() {
  step "no_std: thumbv7em-none-eabihf"
  need_target
  for c in "${NOSTD_CRATES[@]}"; do
    cargo build -p "$c" --no-default-features --target thumbv7em-none-eabihf
  done
  cargo build -p rscst-fw --features defmt --target thumbv7em-none-eabihf
  cargo build -p rscst-core --features defmt --target thumbv7em-none-eabihf
  step "firmware image"
  cargo fw
}

do_fuzz() {
  step "fuzz smoke"
  [ -d fuzz/fuzz_targets ] || { echo "no fuzz targets yet"; return 0; }
  if ! rustup toolchain list | grep -q nightly; then echo "no nightly toolchain: fuzz smoke skipped"; return 0; fi
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then cargo install cargo-fuzz --locked; else echo "cargo-fuzz not installed: fuzz smoke skipped"; return 0; fi
  fi
  for t in $(cd fuzz && cargo +nightly fuzz list); do
    (cd fuzz && cargo +nightly fuzz run "$t" -- -max_total_time="${FUZZ_SECONDS:-30}")
  done
}

do_e2e() {
  deps
  step "e2e: rscst run with real initiators (scripts/e2e.sh)"
  bash scripts/e2e.sh
}

all() { do_fmt; do_clippy; do_test; do_doc; do_nostd; do_e2e; do_fuzz; }

if [ $# -eq 0 ]; then all; exit 0; fi
for cmd in "$@"; do
  case "$cmd" in
    fmt) do_fmt ;; clippy) do_clippy ;; test) do_test ;; doc) do_doc ;;
    nostd) do_nostd ;; fuzz) do_fuzz ;; e2e) do_e2e ;; all) all ;;
    *) echo "unknown step: $cmd (fmt clippy test doc nostd e2e fuzz all)" >&2; exit 2 ;;
  esac
done
