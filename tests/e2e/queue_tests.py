#!/usr/bin/env python3
"""Download slots that queue instead of refusing (issue 15): fus-sim and fusproxy as processes
on loopback ports, real curl, the simulator's SHA-256 as the truth.

usage: queue_tests.py --fusproxy PATH --fus-sim PATH [--source-dir DIR] CASE...  (--list)
"""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, curl, run_cases, wait_until  # noqa: E402
from cache_tests import Env, build_of, download_url, fetch, sha256, sim_sha256  # noqa: E402

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def status(proxy):
    return json.loads(curl(proxy.url("/api/status")).body)


def metric(proxy, name):
    for line in curl(proxy.url("/metrics")).body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def parallel_fetch(urls, *args):
    results = [None] * len(urls)

    def run(i):
        results[i] = fetch(urls[i], *args)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(urls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@case
def twenty_clients_one_address(paths):
    """20 CI jobs behind one address ask for one cold build with the default limits: 20 right
    SHA-256, no 429, one upstream fetch."""
    with Env(paths, ["--throttle-bps", "8MB"]) as env:
        b = build_of(env.sim, "SM-A207F", "SER")
        want = sim_sha256(env.sim, b)
        proxy = env.proxy()
        results = parallel_fetch([download_url(proxy, b)] * 20, "--fail")
        codes = [r[0] for r in results]
        check(codes == [200] * 20, f"every client served: {codes}")
        bad = [i for i, r in enumerate(results) if sha256(r[1]) != want]
        check(not bad, f"clients with a wrong SHA-256: {bad}")
        check(metric(proxy, "fusproxy_downloads_refused_total") == 0, "no refusals counted")
        print(f"  20 clients from 127.0.0.1: 20 x 200, SHA-256 right, 0 refused")


@case
def queued_then_served_or_refused(paths):
    """--max-downloads 2: a third download waits (queue length in /metrics and /api/status);
    with a short --queue-timeout it gets 429 with Retry-After and a JSON error, with a long one
    it is served, with the right bytes, once a slot frees."""
    with Env(paths, ["--throttle-bps", "4MB"]) as env:
        big = build_of(env.sim, "SM-A207F", "SER")  # 24 MiB at 4 MB/s per connection: ~3 s
        small = build_of(env.sim, "SM-G990B", "BTU")
        want_big, want_small = sim_sha256(env.sim, big), sim_sha256(env.sim, small)
        proxy = env.proxy(["--max-downloads", "2", "--queue-timeout", "2", "--connections", "1"])
        holders = [subprocess.Popen(["curl", "-sS", "--limit-rate", "2M", "-o", "/dev/null",
                                     "-w", "%{http_code}", download_url(proxy, big)],
                                    stdout=subprocess.PIPE) for _ in range(2)]
        try:
            wait_until(lambda: status(proxy)["http"]["downloads_active"] == 2, "two downloads")
            started = time.monotonic()
            box = {}
            t = threading.Thread(target=lambda: box.update(r=curl(download_url(proxy, small))))
            t.start()
            wait_until(lambda: status(proxy)["http"].get("downloads_queued") == 1,
                       "the third download queued (/api/status)")
            check(metric(proxy, "fusproxy_downloads_queued") == 1, "queue length in /metrics")
            t.join()
            waited = time.monotonic() - started
            r = box["r"]
            check(r.status == 429 and r.error_code() == "rate_limited", f"after the timeout: {r!r}")
            check(int(r.headers.get("retry-after", "0")) >= 1, f"Retry-After: {r.headers}")
            check(r.headers.get("content-type", "").startswith("application/json"), "JSON error")
            check(waited >= 1.5, f"it waited for --queue-timeout first ({waited:.1f} s)")
            check(metric(proxy, "fusproxy_downloads_queued") == 0, "left the queue")
            check(metric(proxy, "fusproxy_downloads_refused_total") == 1, "refusal counted")
        finally:
            for h in holders:
                out, _ = h.communicate(timeout=60)
                check(out == b"200", f"a holder's download: {out!r}")

        proxy = env.proxy(["--max-downloads", "1", "--queue-timeout", "60"])
        first = os.path.join(env.dir, "first.zip")
        held = subprocess.Popen(["curl", "-sS", "--limit-rate", "8M", "-o", first,
                                 download_url(proxy, big)])
        wait_until(lambda: status(proxy)["http"]["downloads_active"] == 1, "one download")
        code, body, _ = fetch(download_url(proxy, small))  # waits for the slot, then runs
        held.wait(timeout=60)
        with open(first, "rb") as f:
            check(sha256(f.read()) == want_big, "the first download's bytes")
        check(code == 200 and sha256(body) == want_small, f"the queued download: {code}")
        check(metric(proxy, "fusproxy_downloads_queued_total") == 1, "it was queued")


@case
def gone_client_leaves_the_queue(paths):
    """A client that hangs up while queued leaves the queue at once (no slot is kept for it)."""
    with Env(paths, ["--throttle-bps", "2MB"]) as env:
        big = build_of(env.sim, "SM-A207F", "SER")
        small = build_of(env.sim, "SM-G990B", "BTU")
        proxy = env.proxy(["--max-downloads", "1", "--queue-timeout", "120"])
        held = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", download_url(proxy, big)])
        try:
            wait_until(lambda: status(proxy)["http"]["downloads_active"] == 1, "one download")
            waiting = subprocess.Popen(["curl", "-sS", "-o", "/dev/null",
                                        download_url(proxy, small)])
            wait_until(lambda: status(proxy)["http"].get("downloads_queued") == 1, "queued")
            waiting.kill()
            waiting.wait()
            wait_until(lambda: status(proxy)["http"].get("downloads_queued") == 0,
                       "the queue empty once the client is gone", timeout=5)
        finally:
            held.kill()
            held.wait()


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
