#!/usr/bin/env python3
"""Split a callgrind profile of `rscst bench --deterministic` into driver, core, simulator
and harness instructions per command.

Usage: callgrind-split.py CALLGRIND_OUT REPO_ROOT COMMANDS [TOP]

Attribution, per cost line of the profile:
  1. by the source file of the instructions (callgrind records the file of inlined code):
     core/ -> core, qla2x00t/ -> driver, sim/ -> sim, tools/ -> harness;
  2. otherwise (fw-interface, hba, the standard library, libc: code every part uses) by
     the function the instructions are in, when its symbol names one of those crates;
  3. otherwise (a shared function that is not inlined: memcpy, HostRegion::read, a
     parser of rscst-fw ...) by its callers, in proportion to the inclusive cost of
     their calls, recursively.
The driver+core turn (`rscst::bench::run::driver_core_turn`) is also reported inclusive;
what it holds beyond driver and core is the simulated MMIO and DMA the driver's register
and ring accesses run into (on hardware: uncached stores and plain memory).
"""

import re
import sys
from collections import defaultdict

CLASSES = ("core", "driver", "sim", "harness")


def parse(path):
    """Returns self[(fn, file)] -> cost, calls[(caller, callee)] -> inclusive cost,
    and the set of function names."""
    names = {"fl": {}, "fn": {}}
    selfc = defaultdict(int)
    calls = defaultdict(int)
    fn = None
    fl = None
    cur = None  # file of the cost lines that follow (fi/fe switch it)
    pending_call = None

    def name(kind, rest):
        m = re.match(r"\((\d+)\)(?: (.*))?$", rest)
        if not m:
            return rest
        i, n = m.group(1), m.group(2)
        table = names["fn" if kind in ("fn", "cfn") else "fl"]
        if n is not None:
            table[i] = n
        return table.get(i, "?")

    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if len(parts) < 2:
                    continue
                cost = int(parts[1])
                if pending_call is not None:
                    calls[(fn, pending_call)] += cost
                    pending_call = None
                else:
                    selfc[(fn, cur)] += cost
                continue
            key, _, rest = line.partition("=")
            if key == "fl":
                fl = name("fl", rest)
                cur = fl
            elif key in ("fi", "fe"):
                cur = name("fl", rest)
            elif key == "fn":
                fn = name("fn", rest)
                cur = fl
            elif key in ("cfl", "cfi"):
                name("fl", rest)
            elif key == "cfn":
                callee = name("cfn", rest)
            elif key == "calls":
                pending_call = callee
    return selfc, calls


def crate_of_symbol(sym):
    s = sym
    if s.startswith("<"):
        inner = s[1:]
        x, sep, rest = inner.partition(" as ")
        x = x.lstrip("&").replace("mut ", "").replace("dyn ", "")
        for prefix, cls in PREFIXES:
            if x.startswith(prefix):
                return cls
        if sep:
            y = rest.split(">::")[0]
            for prefix, cls in PREFIXES:
                if y.startswith(prefix):
                    return cls
        return None
    for prefix, cls in PREFIXES:
        if s.startswith(prefix):
            return cls
    return None


PREFIXES = (
    ("rscst_core::", "core"),
    ("rscst_qla::", "driver"),
    ("rscst_sim::", "sim"),
    ("rscst::", "harness"),
)



def attribute(selfc, calls, root, dirs):
    """Instructions by class, and by (class, function, file), from a parsed profile.

    A cost line is the class of its source file when that file is under `root` and one of
    `dirs` (prefix, class); else the class of its function's symbol (`crate_of_symbol`,
    which reads `PREFIXES`); else (memcpy, malloc, libc, std) it is shared among its callers
    in proportion to their inclusive cost of the call, recursively."""
    def file_class(fl):
        if fl and fl.startswith(root):
            rel = fl[len(root):]
            for d, cls in dirs:
                if rel.startswith(d):
                    return cls
        return None

    callers = defaultdict(list)
    for (caller, callee), cost in calls.items():
        callers[callee].append((caller, cost))

    memo = {}

    def owner(fn, depth=0):
        """Class weights of a shared function, from its callers."""
        if fn in memo:
            return memo[fn]
        cls = crate_of_symbol(fn or "")
        if cls:
            memo[fn] = {cls: 1.0}
            return memo[fn]
        memo[fn] = {}  # cycle guard
        w = defaultdict(float)
        total = sum(c for _, c in callers.get(fn, []))
        if total > 0 and depth < 50:
            for caller, c in callers[fn]:
                for k, v in owner(caller, depth + 1).items():
                    w[k] += v * c / total
        memo[fn] = dict(w) if w else {"unattributed": 1.0}
        return memo[fn]

    by_class = defaultdict(float)
    by_fn = defaultdict(float)  # (class, fn, file) -> cost
    for (fn, fl), cost in selfc.items():
        cls = file_class(fl)
        weights = {cls: 1.0} if cls else owner(fn)
        for k, v in weights.items():
            by_class[k] += cost * v
            by_fn[(k, fn, fl)] += cost * v
    return by_class, by_fn


def short_path(fl, root):
    """A source file relative to the repository, or std's relative to its library/."""
    return fl[len(root):] if fl and fl.startswith(root) else re.sub(r".*/library/", "std/", fl or "?")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    path, root, n = sys.argv[1], sys.argv[2].rstrip("/") + "/", int(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 12
    selfc, calls = parse(path)

    dirs = (("core/", "core"), ("qla2x00t/", "driver"), ("sim/", "sim"), ("tools/", "harness"))
    by_class, by_fn = attribute(selfc, calls, root, dirs)

    def inclusive(pattern):
        return sum(c for (caller, callee), c in calls.items() if callee and re.search(pattern, callee)
                   and not (caller and re.search(pattern, caller)))

    total = sum(selfc.values())
    turn = inclusive(r"rscst::bench::run::driver_core_turn")
    core, driver = by_class.get("core", 0.0), by_class.get("driver", 0.0)
    print(f"commands: {n}; instructions in the window: {total / n:,.0f} per command")
    print(f"driver+core turns (inclusive):      {turn / n:8,.0f} per command")
    print(f"  driver (qla2x00t, its rscst-fw/hba/std share):  {driver / n:8,.0f}")
    print(f"  core (rscst-core):                               {core / n:8,.0f}")
    print(f"  driver + core:                                   {(driver + core) / n:8,.0f}")
    print(f"  simulated MMIO/DMA inside the turns:             {(turn - driver - core) / n:8,.0f}")
    print(f"simulator (firmware model, fabric, initiators):    {by_class.get('sim', 0.0) / n:8,.0f}")
    print(f"harness (bench loop, clocks, counters):            {by_class.get('harness', 0.0) / n:8,.0f}")
    if by_class.get("unattributed"):
        print(f"unattributed:                                      {by_class['unattributed'] / n:8,.0f}")
    for cls in ("driver", "core", "sim"):
        rows = sorted(((c, fn, fl) for (k, fn, fl), c in by_fn.items() if k == cls), reverse=True)
        print(f"\ntop {cls} costs (instructions per command; function [source file of the code]):")
        for c, fn, fl in rows[:top]:
            print(f"  {c / n:7.1f}  {fn}  [{short_path(fl, root)}]")


if __name__ == "__main__":
    main()
