#!/usr/bin/env python3
"""conformance-gate.py — judge a libiscsi conformance run against the allow-list.

Usage: conformance-gate.py SUMMARY [ALLOW_FILE] [--extra SUMMARY2 ...]

SUMMARY is the summary.txt that scripts/peers/conformance.sh writes; --extra adds the
summaries of supplementary runs (e.g. SCSI.ReadOnly against a write-protected LUN):
a test that passed in any run counts as passed.

ALLOW_FILE (default: scripts/conformance-allow.txt next to this script) has one entry
per line:  SUITE.TEST  KIND  reason...   with KIND one of
  fail   the test fails for a reason outside this repository's control or not fixed yet
  skip   the test skips (the target lacks what it needs)
  noisy  CUnit passes the test, but it prints [FAILED] for outcomes it expects (e.g. its
         "wait until all unit attentions clear" loop prints every UA it clears): it
         counts as passed
A name may end in '*' (prefix match). Every entry needs a reason.

Exit status 1 (and a line per problem) when a test failed, hung, soft-failed or skipped
without a matching entry. An entry whose test now passes is reported as stale (a
warning, not a failure: fixes land in other branches first; clean the list then).
"""
import os
import re
import sys

KINDS = ("fail", "skip", "noisy")


def read_summary(path):
    res = {}
    text = open(path, errors="replace").read()
    m = re.search(r"^parsed: total=(\d+) passed=(\d+)", text, re.M)
    if not m:
        sys.exit(f"{path}: no 'parsed:' line (did conformance.sh run?)")
    total = int(m.group(1))
    for st in ("failed", "soft-failed", "unfinished", "skipped"):
        mm = re.search(rf"^{st} \(\d+\): (.*)$", text, re.M)
        for name in (mm.group(1).split() if mm else []):
            res[name] = st
    return total, int(m.group(2)), res


def read_allow(path):
    allow = []
    for n, line in enumerate(open(path), 1):
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if not line:
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or parts[1] not in KINDS:
            sys.exit(f"{path}:{n}: want 'SUITE.TEST KIND reason' with KIND in {KINDS}")
        allow.append((parts[0], parts[1], parts[2]))
    return allow


def ran_tests(log):
    """SUITE.TEST names that a CUnit log shows running."""
    names, suite = set(), None
    for line in open(log, errors="replace"):
        m = re.match(r"^Suite: (.*)$", line)
        if m:
            suite = m.group(1).strip()
            continue
        m = re.match(r"^\s+Test: (\S+) \.\.\.", line)
        if m and suite:
            names.add(f"{suite}.{m.group(1)}")
    return names


def match(pattern, name):
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def main(argv):
    args = [a for a in argv[1:]]
    extra = []
    while "--extra" in args:
        i = args.index("--extra")
        extra.append(args[i + 1])
        del args[i:i + 2]
    if not args:
        sys.exit(__doc__)
    summary = args[0]
    allow_path = args[1] if len(args) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "conformance-allow.txt")
    total, passed, res = read_summary(summary)
    # Supplementary runs: a test that ran there and is in none of its bad lists passed.
    rescued = set()
    for e in extra:
        _, _, r2 = read_summary(e)
        ran = ran_tests(os.path.join(os.path.dirname(os.path.abspath(e)), "iscsi-test-cu.log"))
        for name in list(res):
            if name in ran and name not in r2:
                del res[name]
                rescued.add(name)
                passed += 1
    allow = read_allow(allow_path)
    problems, used, noisy = [], set(), 0
    for name, st in sorted(res.items()):
        want = {"failed": "fail", "unfinished": None, "skipped": "skip", "soft-failed": "noisy"}[st]
        hit = next((a for a in allow if want and a[1] == want and match(a[0], name)), None)
        if hit is None:
            problems.append(f"{st}: {name} (not on the allow-list as '{want}')")
        else:
            used.add(hit[0] + " " + hit[1])
            if want == "noisy":
                noisy += 1
    stale = [f"{a[0]} {a[1]}" for a in allow
             if f"{a[0]} {a[1]}" not in used and not any(match(a[0], r) for r in rescued)]
    for r in sorted(rescued):
        print(f"  {r}: passed in a supplementary run")
    counts = {k: sum(1 for v in res.values() if v == k) for k in ("failed", "soft-failed", "skipped", "unfinished")}
    print(f"conformance: {total} tests: {passed + noisy} passed ({passed} clean + {noisy} noisy), "
          f"{counts['failed']} failed, {counts['skipped']} skipped, {counts['unfinished']} unfinished; "
          f"{len(problems)} not allowed")
    for p in problems:
        print(f"  NOT ALLOWED {p}")
    for s in stale:
        print(f"  stale allow-list entry (the test passes now): {s}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
