#!/usr/bin/env python3
"""Lifetimes at the edges: a client that goes away while its download waits for bytes, and a
stop past the shutdown grace with downloads and metadata requests still waiting upstream.

Both run in the normal suite (they check behaviour: the wait ends at once, the process keeps
serving, the stop is clean) and under scripts/asan.sh, where a task that outlives the objects
it uses shows up as a report (issue 13: a heap-use-after-free at shutdown)."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import FAST, Proxy, Sim, check, curl, run_cases, wait_until  # noqa: E402

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def metric(proxy, name):
    body = curl(proxy.url("/metrics")).body
    total = 0.0
    found = False
    for line in body.splitlines():
        if line.startswith(name) and (len(line) == len(name) or line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else None


def download_path(b):
    return (f"/firmware/{b['model']}/{b['region']}/"
            f"{b['version'].replace('/', '_')}/download")


def build(sim, model, region):
    return next(b for b in sim.builds()
                if b["model"] == model and b["region"] == region and b["hosted"])


@case
def client_gone_while_waiting(paths):
    """The download waits for bytes that do not come (upstream holds its first byte); the
    client closes: the wait ends within seconds, not at the next write or the upstream
    timeout, and the service keeps serving."""
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--retry-base-ms", "20", "--upstream-timeout", "30"]) as proxy:
        b = build(sim, "SM-A207F", "SER")
        check(curl(proxy.url(download_path(b)[:-len("/download")])).status == 200, "metadata")
        sim.arm("slow-first-byte=20s@download*inf")
        client = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", proxy.url(download_path(b))],
                                  stderr=subprocess.DEVNULL)
        wait_until(lambda: (metric(proxy, "fusproxy_downloads_active") or 0) >= 1,
                   "the download waiting", timeout=10)
        client.kill()
        client.wait()
        t0 = time.monotonic()
        wait_until(lambda: metric(proxy, "fusproxy_downloads_active") == 0,
                   "the download to end after its client left", timeout=8)
        print(f"download ended {time.monotonic() - t0:.2f}s after the client left")
        check(curl(proxy.url("/healthz")).status == 200, "still serving")
        urllib.request.urlopen(urllib.request.Request(sim.url("/_sim/faults"),
                                                      method="DELETE"), timeout=10).read()
        r = curl(proxy.url(download_path(b)), "-r", "0-99")
        check(r.status == 206, f"a new download works: {r}")


@case
def stop_past_grace_with_work_in_flight(paths):
    """SIGTERM with a throttled download streaming and two metadata requests waiting on a
    slow upstream, grace 1 s: the process exits cleanly and soon; the clients see a cut
    connection or an error, never a success with missing bytes."""
    with Sim(paths) as sim, \
            Proxy(paths, sim, extra=FAST + ["--shutdown-grace", "1"]) as proxy:
        sim.post("/_sim/throttle", json.dumps({"bps": 1 << 20}).encode())
        b = build(sim, "SM-S931U1", "XAA")
        download = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} "
                                     "%{size_download}", proxy.url(download_path(b))],
                                    stdout=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL)
        wait_until(lambda: (metric(proxy, "fusproxy_downloads_active") or 0) >= 1,
                   "the download streaming", timeout=15)
        sim.arm("slow-first-byte=20s@inform*inf,slow-first-byte=20s@nonce*inf")
        waiting = [subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                     proxy.url(path)], stdout=subprocess.PIPE, text=True,
                                    stderr=subprocess.DEVNULL)
                   for path in ("/firmware/SM-G990B/BTU/latest", "/firmware/SM-G900F/DBT/latest")]
        wait_until(lambda: (metric(proxy, "fusproxy_requests_in_flight") or 0) >= 4,
                   "two metadata requests waiting upstream", timeout=10)
        t0 = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        rc = proxy.proc.wait(timeout=20)
        took = time.monotonic() - t0
        print(f"exited {rc} {took:.2f}s after SIGTERM")
        check(rc == 0, f"clean exit: {rc}\n{proxy.tail()}")
        check(took < 8, f"stopped soon after the 1 s grace: {took:.2f}s")
        status, size = download.communicate(timeout=10)[0].split()
        check(int(size) < b["plain_size"], f"the download was cut, not completed ({status} {size})")
        for w in waiting:
            code = w.communicate(timeout=10)[0]
            check(code != "200", f"a waiting metadata request did not succeed: {code}")


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
