#!/usr/bin/env python3
"""Split a callgrind profile of `rscst run` serving iSCSI into instructions per IO by
component: portal (sim/src/iscsi), gateway (sim/src/gateway), firmware model
(sim/src/firmware), the rest of the simulator (fabric, events, initiators, DMA), driver
(qla2x00t), core, the rtc loop glue (tools/) and the poller (mio).

Usage: callgrind-split-iscsi.py CALLGRIND_OUT REPO_ROOT IOS [TOP]

Attribution as in callgrind-split.py (whose parser this reuses): by the source file of the
instructions, else by the crate/module in the function's symbol, else (memcpy, malloc,
libc's syscall wrappers, std) by the callers in proportion to their inclusive cost.
"""

import importlib.util
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("cgsplit", os.path.join(here, "callgrind-split.py"))
cgsplit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cgsplit)

DIRS = (
    ("sim/src/iscsi/", "portal"),
    ("sim/src/gateway/", "gateway"),
    ("sim/src/firmware/", "firmware model"),
    ("sim/", "sim other"),
    ("qla2x00t/", "driver"),
    ("core/", "core"),
    ("tools/", "rtc glue"),
)
PREFIXES = (
    ("rscst_sim::iscsi::", "portal"),
    ("rscst_sim::gateway::", "gateway"),
    ("rscst_sim::firmware::", "firmware model"),
    ("rscst_sim::", "sim other"),
    ("rscst_qla::", "driver"),
    ("rscst_core::", "core"),
    ("rscst::", "rtc glue"),
    ("mio::", "poller (mio)"),
)
ORDER = ("portal", "gateway", "firmware model", "sim other", "driver", "core", "rtc glue",
         "poller (mio)", "unattributed")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, root, n = sys.argv[1], sys.argv[2].rstrip("/") + "/", int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    cgsplit.PREFIXES = PREFIXES
    selfc, calls = cgsplit.parse(path)

    by_class, by_fn = cgsplit.attribute(selfc, calls, root, DIRS)
    total = sum(selfc.values())
    alloc = sum(c for (fn, _), c in selfc.items()
                if fn and re.search(r"^(malloc|free|realloc|calloc|_int_malloc|_int_free|"
                                    r"_int_realloc|malloc_consolidate|cfree|__libc_malloc|"
                                    r"__libc_free|__libc_realloc|tcache_|_int_free_merge)", fn))
    copy = sum(c for (fn, _), c in selfc.items()
               if fn and re.search(r"^(__memcpy|__memmove|memcpy|memmove|__memset|memset)", fn))
    print(f"IOs: {n}; instructions in the window: {total / n:,.0f} per IO")
    for cls in ORDER:
        if by_class.get(cls):
            print(f"  {cls:<16} {by_class[cls] / n:8,.0f}")
    print(f"  (of which malloc/free {alloc / n:,.0f}, memcpy/memmove/memset {copy / n:,.0f})")
    for cls in ORDER:
        rows = sorted(((c, fn, fl) for (k, fn, fl), c in by_fn.items() if k == cls), reverse=True)
        if not rows:
            continue
        print(f"\ntop {cls} costs (instructions per IO; function [source file]):")
        for c, fn, fl in rows[:top]:
            print(f"  {c / n:7.1f}  {fn[:110]}  [{cgsplit.short_path(fl, root)}]")


if __name__ == "__main__":
    main()
