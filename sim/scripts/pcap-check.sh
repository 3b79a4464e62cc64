#!/usr/bin/env bash
# pcap-check.sh [OUT.pcap] — the CI pcap check of the simulator.
#
# Runs the mixed workload (reads, writes, INQUIRY, READ CAPACITY, TEST UNIT READY, a LUN
# RESET, an ABTS and a LOGO) through the simulated ISP, captures every FC frame as
# LINKTYPE_FC_2_WITH_FRAME_DELIMS (225), and has tshark decode it: no malformed frame, no
# bad CRC, and exactly the SCSI opcodes the workload sent (see sim/tests/pcap_tshark.rs).
# The test skips with a message when tshark is absent; install it with
#   apt-get install -y tshark
# With OUT.pcap the capture is kept for Wireshark.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v tshark >/dev/null 2>&1; then
  echo "pcap-check: tshark not found; the test will only run its own frame checks" >&2
fi
if [[ $# -ge 1 ]]; then
  export RSCST_PCAP_OUT="$(realpath -m "$1")"
fi
cargo test -p rscst-sim --test pcap_tshark -- --nocapture
if [[ -n "${RSCST_PCAP_OUT:-}" ]] && command -v tshark >/dev/null 2>&1; then
  tshark -r "$RSCST_PCAP_OUT" 2>/dev/null | tail -n +1
fi
