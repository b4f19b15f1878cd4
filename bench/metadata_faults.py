#!/usr/bin/env python3
"""What a transient upstream fault costs a metadata lookup (docs/resolver.md, "Retries").

fus-sim and fusproxy on loopback (tests/e2e/harness.py), `latest` never reused
(--metadata-ttl 0) so every request resolves upstream. Prints the median (of RUNS, default 5)
time of `curl /firmware/SM-G990B/BTU/latest` clean and with one fault armed before each
request, and the time to the JSON error with a fault armed without end, against
--upstream-deadline. Settings are fusproxy's defaults (--retry-base-ms 1000) except the
deadline of the endless case (DEADLINE, default 3 s).

usage: bench/metadata_faults.py [path/to/fusproxy [path/to/fus-sim]]   RUNS=5 DEADLINE=3
"""
import os
import statistics
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "e2e"))
from harness import Paths, Proxy, Sim, curl  # noqa: E402

RUNS = int(os.environ.get("RUNS", "5"))
DEADLINE = int(os.environ.get("DEADLINE", "3"))
ROUTE = "/firmware/SM-G990B/BTU/latest"


def median_time(sim, proxy, spec, want_status):
    times = []
    for _ in range(RUNS):
        if spec:
            sim.arm(spec)
        start = time.monotonic()
        r = curl(proxy.url(ROUTE))
        times.append(time.monotonic() - start)
        if r.status != want_status:
            raise SystemExit(f"{spec}: HTTP {r.status}, want {want_status}: {r!r}")
        if spec and spec.endswith("*inf"):
            import urllib.request
            urllib.request.urlopen(urllib.request.Request(sim.url("/_sim/faults"),
                                                          method="DELETE"), timeout=10).read()
    return statistics.median(times)


def main():
    proxy_bin = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../build/cli/fusproxy")
    sim_bin = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "../build/sim/fus-sim")
    paths = Paths(proxy_bin, sim_bin, os.path.join(here, ".."))
    with Sim(paths) as sim:
        with Proxy(paths, sim, "smart2", ["--metadata-ttl", "0"]) as proxy:
            curl(proxy.url(ROUTE))  # connections warm
            clean = median_time(sim, proxy, None, 200)
            print(f"clean lookup:                       {clean * 1000:7.1f} ms")
            for spec in ("status=500@inform*1", "reset@nonce*1", "firewall@inform*1",
                         "range-200@download*1", "status=503@inform*1"):
                t = median_time(sim, proxy, spec, 200)
                print(f"one {spec:28s}    {t * 1000:7.1f} ms  ({t / clean:5.1f} x clean)")
        with Proxy(paths, sim, "smart2", ["--metadata-ttl", "0", "--upstream-deadline",
                                          str(DEADLINE)]) as proxy:
            for spec, status in (("status=500@inform*inf", 502),
                                 ("slow-first-byte=40s@inform*inf", 504)):
                t = median_time(sim, proxy, spec, status)
                print(f"endless {spec:30s} {t:5.2f} s to {status} (deadline {DEADLINE} s, "
                      f"{t / DEADLINE:4.2f} x)")
    print(f"median of {RUNS} runs each; fusproxy defaults otherwise (--retry-base-ms 1000)")


if __name__ == "__main__":
    main()
