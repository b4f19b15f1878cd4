#!/usr/bin/env python3
"""--trusted-proxy end to end: fus-sim and fusproxy on loopback, real curl, clients told apart
by X-Forwarded-For as nginx sends it. Behind a trusted proxy each forwarded client has its own
download slots and rate-limit bucket and is named in the access log; without --trusted-proxy
the header is ignored and everyone on the socket's address shares them.

usage: forwarded_tests.py --fusproxy PATH --fus-sim PATH [--source-dir DIR] CASE...  (--list)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, run_cases, wait_until  # noqa: E402
from cache_tests import (Env, build_of, download_url, fetch, held_reader, sha256,  # noqa: E402
                         sim_sha256)

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def access_lines(proxy):
    """request_id -> the JSON access line of that request."""
    out = {}
    with open(proxy.log_path, errors="replace") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == "access":
                out[entry.get("request_id")] = entry
    return out


def logged(proxy, request_id):
    """The access line of request_id, once written (a download's is written when it ends)."""
    return wait_until(lambda: access_lines(proxy).get(request_id), f"the access line of {request_id}")


def as_client(address, request_id):
    return ["-H", f"X-Forwarded-For: {address}", "-H", f"X-Request-Id: {request_id}"]


def limited_proxy(env, extra=()):
    # --queue-timeout 0: a download over the cap is refused at once instead of queued
    return env.proxy(["--max-downloads-per-client", "1", "--queue-timeout", "0",
                      "--log-format", "json", *extra])


@case
def trusted_proxy_per_client_limits(paths):
    """--trusted-proxy 127.0.0.1: 10.0.0.1 holds its one download slot (a second download of its
    own gets 429), 10.0.0.2 downloads at the same time; the rate limit is per forwarded client
    too; the access log names 10.0.0.1 and 10.0.0.2."""
    with Env(paths) as env:
        big = build_of(env.sim, "SM-A207F", "SER")  # 24 MiB: more than the socket buffers hold
        small = build_of(env.sim, "SM-G990B", "BTU")
        proxy = limited_proxy(env, ["--trusted-proxy", "127.0.0.1"])
        held = held_reader(download_url(proxy, big),
                           ["X-Forwarded-For: 10.0.0.1", "X-Request-Id: held-10.0.0.1"])
        try:
            code, body, head = fetch(download_url(proxy, small), *as_client("10.0.0.1", "second-10.0.0.1"))
            check(code == 429 and b"rate_limited" in body,
                  f"10.0.0.1's second download while its first is held: {code} {body[:200]!r}")
            code, body, head = fetch(download_url(proxy, small), *as_client("10.0.0.2", "first-10.0.0.2"))
            check(code == 200, f"10.0.0.2's download while 10.0.0.1's is held: {code} {head[:300]}")
            check(sha256(body) == sim_sha256(env.sim, small), "10.0.0.2's download: wrong SHA-256")
            # The proxy's own address (a direct request, no header) is one more client.
            code, body, _ = fetch(download_url(proxy, small))
            check(code == 200 and sha256(body) == sim_sha256(env.sim, small),
                  f"a direct download from 127.0.0.1: {code}")
        finally:
            held.close()
        expected = {"second-10.0.0.1": ("10.0.0.1", 429), "first-10.0.0.2": ("10.0.0.2", 200),
                    "held-10.0.0.1": ("10.0.0.1", 200)}
        for rid, (client, status) in expected.items():
            line = logged(proxy, rid)
            check(line.get("client") == client and line.get("status") == status,
                  f"access line of {rid}: {line}, expected client {client} status {status}")
        # 10.0.0.1's slot is free again once its held download has ended.
        code, body, _ = fetch(download_url(proxy, small), *as_client("10.0.0.1", "again-10.0.0.1"))
        check(code == 200 and sha256(body) == sim_sha256(env.sim, small),
              f"10.0.0.1 after its held download ended: {code}")

        # The rate limiter: one request per 10 s, per forwarded client.
        rated = env.proxy(["--rate-limit", "0.1", "--log-format", "json",
                           "--trusted-proxy", "127.0.0.0/8"])
        path = f"/firmware/{small['model']}/{small['region']}"
        results = [fetch(rated.url(path), *as_client(ip, f"rate-{i}"))[0]
                   for i, ip in enumerate(["10.0.0.3", "10.0.0.3", "10.0.0.4", "2001:db8::5"])]
        check(results == [200, 429, 200, 200], f"rate limit per forwarded client: {results}")
        check(logged(rated, "rate-3").get("client") == "2001:db8::5", "IPv6 client in the access log")


@case
def untrusted_forwarded_for_ignored(paths):
    """Without --trusted-proxy X-Forwarded-For is ignored: while "10.0.0.1" holds a download,
    "10.0.0.2" is the same client (127.0.0.1) and gets 429; the log names 127.0.0.1. A trusted
    range that does not hold the peer is the same as none."""
    with Env(paths) as env:
        big = build_of(env.sim, "SM-A207F", "SER")
        small = build_of(env.sim, "SM-G990B", "BTU")
        for extra in ([], ["--trusted-proxy", "10.0.0.0/8,::1"]):
            proxy = limited_proxy(env, extra)
            tag = "none" if not extra else "other"
            held = held_reader(download_url(proxy, big),
                               ["X-Forwarded-For: 10.0.0.1", f"X-Request-Id: held-{tag}"])
            try:
                code, body, _ = fetch(download_url(proxy, small), *as_client("10.0.0.2", f"other-{tag}"))
                check(code == 429, f"{extra}: a download claiming 10.0.0.2 while 10.0.0.1's is "
                      f"held: {code}, expected 429 (the header must be ignored)")
            finally:
                held.close()
            for rid in (f"held-{tag}", f"other-{tag}"):
                line = logged(proxy, rid)
                check(line.get("client") == "127.0.0.1", f"{extra}: access line of {rid}: {line}")
            # The 429 was the shared slot: free again once the held download ended.
            def downloads():
                code, body, _ = fetch(download_url(proxy, small), *as_client("10.0.0.2", "x"))
                return code == 200 and sha256(body) == sim_sha256(env.sim, small)
            wait_until(downloads, f"{extra}: the slot to be free after the held download", 10)
            proxy.stop()


def main():
    return run_cases(CASES)


if __name__ == "__main__":
    sys.exit(main())
