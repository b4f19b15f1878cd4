#!/usr/bin/env python3
"""The mirror (issue 6) end to end: fus-sim and fusproxy as processes on loopback ports,
real curl, the simulator's SHA-256 and byte counters as the truth.

usage: cache_tests.py --fusproxy PATH --fus-sim PATH [--source-dir DIR] CASE...  (--list)
"""
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAST, Failure, Process, Sim, check, curl, run_cases, wait_until  # noqa: E402

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class CacheProxy(Process):
    """fusproxy on a cache directory the test owns (it survives restarts and kill -9)."""

    def __init__(self, paths, sim_url, cache_dir, workdir, extra=(), env=None):
        argv = [paths.fusproxy, "--listen", "127.0.0.1:0", "--cache-dir", cache_dir,
                "--fus-url", sim_url, "--cloud-url", sim_url, "--fota-url", sim_url,
                *FAST, *extra]
        super().__init__("fusproxy", argv, workdir)
        self.env = env

    def start(self, timeout=10.0):
        if self.env:
            old = dict(os.environ)
            os.environ.update(self.env)
            try:
                super().start(timeout)
            finally:
                os.environ.clear()
                os.environ.update(old)
        else:
            super().start(timeout)
        wait_until(lambda: curl(self.url("/readyz")).status == 200, "fusproxy /readyz")
        return self

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()


class Env:
    """A simulator, a work directory and a cache directory; proxies started on demand."""

    def __init__(self, paths, sim_args=()):
        self.paths = paths
        self.dir = tempfile.mkdtemp(prefix="e2e-cache-")
        self.cache = os.path.join(self.dir, "cache")
        self.sim = Sim(paths, workdir=os.path.join(self.dir, "sim"))
        os.makedirs(self.sim.workdir, exist_ok=True)
        self.sim.argv[1:1] = list(sim_args)
        self.proxies = []

    def __enter__(self):
        self.sim.start()
        return self

    def proxy(self, extra=(), env=None):
        p = CacheProxy(self.paths, self.sim.base_url, self.cache, self.dir, extra, env)
        self.proxies.append(p)
        return p.start()

    def __exit__(self, *exc):
        for p in self.proxies:
            p.stop()
        if exc and exc[0] is not None and self.proxies:
            print(f"--- fusproxy log tail ---\n{self.proxies[-1].tail(40)}")
        self.sim.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def build_of(sim, model, region, version=None):
    for b in sim.builds():
        if b["model"] != model or b["region"] != region or not b["hosted"]:
            continue
        if version is not None and b["version"] == version:
            return b
        if version is None and not b["beta"] and not b["answers_with_newest"]:
            return b
    raise Failure(f"no build for {model}/{region}/{version}")


def sim_sha256(sim, b):
    return sim.get_json(f"/_sim/builds/{b['binary_name']}/sha256")["sha256"]


def served(sim, b):
    return sim.stats()["builds"].get(b["binary_name"], {}).get("bytes_served", 0)


def set_throttle(sim, bps):
    sim.post("/_sim/throttle", json.dumps({"bps": bps}).encode())


def version_id(b):
    return b["version"].replace("/", "_")


def held_reader(url, headers=()):
    """A download that stays in flight: the client reads the status line and then nothing, with a
    tiny receive window, so the server cannot finish writing and keeps the build pinned (a rate
    limited curl is not enough: a small build fits in the loopback socket buffers). `headers`:
    extra "Name: value" lines."""
    parsed = urllib.parse.urlsplit(url)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((parsed.hostname, parsed.port))
    extra = "".join(f"{h}\r\n" for h in headers)
    s.sendall(f"GET {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n{extra}\r\n".encode())
    check(s.recv(12).startswith(b"HTTP/1.1 200"), f"held download of {url} did not start")
    return s


def download_url(proxy, b, latest=False, suffix="download"):
    v = "latest" if latest else version_id(b)
    return proxy.url(f"/firmware/{b['model']}/{b['region']}/{v}/{suffix}")


def fetch(url, *args, timeout=60):
    """(status, body bytes, headers text) of one curl run."""
    out = subprocess.run(["curl", "-sS", "--max-time", str(timeout), "-D", "/dev/stderr",
                          "-w", "\n%{http_code}", *args, url], capture_output=True)
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code or 0), body, out.stderr.decode(errors="replace")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def cache_files(cache):
    out = {}
    for sub in ("builds", "partial"):
        d = os.path.join(cache, sub)
        if os.path.isdir(d):
            for n in os.listdir(d):
                out[f"{sub}/{n}"] = os.path.getsize(os.path.join(d, n))
    return out


def status(proxy):
    return json.loads(curl(proxy.url("/api/status")).body)


# --- single-flight ----------------------------------------------------------------------------

@case
def fifty_clients_one_fetch(paths):
    """50 curl clients (full, Range, late) for one cold 24 MiB build: right bytes, fetched once."""
    with Env(paths, ["--throttle-bps", "6MB"]) as env:
        b = build_of(env.sim, "SM-A207F", "SER")
        want = sim_sha256(env.sim, b)
        proxy = env.proxy(["--max-downloads-per-client", "0"])  # 50 clients, one address
        size = b["plain_size"]
        url = download_url(proxy, b, latest=True)
        rng = random.Random(6)
        ranges = [(0, 99), (size - 4096, size - 1), (12 << 20, None), (None, 1 << 20)]
        while len(ranges) < 12:
            first = rng.randrange(0, size - 1)
            ranges.append((first, min(size - 1, first + rng.randrange(1, 3 << 20))))
        results = {}

        def run(i, args, delay):
            time.sleep(delay)
            results[i] = fetch(url, *args)

        threads = []
        for i in range(50):
            args, delay = [], 0.0
            if i < len(ranges):
                a, z = ranges[i]
                spec = f"-{z}" if a is None else (f"{a}-" if z is None else f"{a}-{z}")
                args = ["-H", f"Range: bytes={spec}"]
            if i >= 40:
                delay = 0.4 + 0.1 * (i - 40)  # late: the fetch is under way
            threads.append(threading.Thread(target=run, args=(i, args, delay)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        full = None
        for i in range(len(ranges), 50):
            status_code, body, head = results[i]
            check(status_code == 200, f"client {i}: {status_code} {head[:200]}")
            check(sha256(body) == want, f"client {i}: SHA-256 differs ({len(body)} bytes)")
            full = body
        for i, (a, z) in enumerate(ranges):
            status_code, body, head = results[i]
            check(status_code == 206, f"range client {i}: {status_code}")
            if a is None:
                expect = full[-z:]
            else:
                expect = full[a:(size if z is None else z + 1)]
            check(body == expect, f"range client {i} ({a}-{z}): bytes differ")
        total = served(env.sim, b)
        check(total <= 1.05 * b["encrypted_size"],
              f"the simulator served {total} bytes of a {b['encrypted_size']}-byte build")
        print(f"  50 clients, upstream bytes {total} = {total / b['encrypted_size']:.4f} x size")


# --- restart safety ---------------------------------------------------------------------------

@case
def kill9_resumes_missing_bytes(paths):
    """kill -9 at ~40% of a 48 MiB fetch, restart, ask again: only the missing bytes move."""
    with Env(paths, ["--throttle-bps", "3MB"]) as env:
        b = build_of(env.sim, "SM-S931U1", "XAA")
        want = sim_sha256(env.sim, b)
        size = b["encrypted_size"]
        proxy = env.proxy(["--connections", "2"])
        url = download_url(proxy, b)
        client = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", url],
                                  stderr=subprocess.DEVNULL)
        wait_until(lambda: served(env.sim, b) >= 0.4 * size, "40% of the build served",
                   timeout=30, interval=0.05)
        proxy.kill9()
        client.kill()
        client.wait()
        first = served(env.sim, b)
        files = cache_files(env.cache)
        check(any(n.endswith(".part.map") for n in files), f"no map persisted: {files}")
        set_throttle(env.sim, 0)
        proxy = env.proxy(["--connections", "2"])
        status_code, body, head = fetch(download_url(proxy, b))
        check(status_code == 200, f"after restart: {status_code} {head[:300]}")
        check(sha256(body) == want, "after restart: SHA-256 differs")
        total = served(env.sim, b)
        print(f"  first run {first / size:.3f} x size, both runs {total / size:.4f} x size")
        check(total <= 1.05 * size, f"both runs fetched {total} bytes of a {size}-byte build")
        check("resum" in proxy.tail(200) or "present" in proxy.tail(200), "no resume logged")


def interrupted_fetch(env, b, stop):
    """Starts fetching `b` (throttled), and once ~40% is served stops the proxy with
    `stop(proxy)`; returns the partial directory's (part path, map text)."""
    set_throttle(env.sim, 3_000_000)
    proxy = env.proxy(["--connections", "2"])
    client = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", download_url(proxy, b)],
                              stderr=subprocess.DEVNULL)
    wait_until(lambda: served(env.sim, b) >= 0.4 * b["encrypted_size"], "40% of the build served",
               timeout=30, interval=0.05)
    client.kill()
    client.wait()
    stop(proxy)
    set_throttle(env.sim, 0)
    partial = os.path.join(env.cache, "partial")
    part = [n for n in os.listdir(partial) if n.endswith(".part")]
    check(len(part) == 1, f"partial files: {os.listdir(partial)}")
    with open(os.path.join(partial, part[0] + ".map")) as f:
        return os.path.join(partial, part[0]), f.read()


def map_runs(text):
    """[(begin, end)] of a saved present map ("fusproxy-present 1 TOTAL", "BEGIN END CRC"...)."""
    return [tuple(int(x) for x in line.split()[:2]) for line in text.splitlines()[1:]
            if len(line.split()) == 3]


@case
def unclean_stop_rechecks_resumed_bytes(paths):
    """kill -9, then 64 KiB the saved map calls present lost from the part file (what a power
    loss does to pages not written back): on restart the run is checked against the disk and
    fetched again; the client gets the right bytes and the build verifies."""
    with Env(paths) as env:
        b = build_of(env.sim, "SM-S931U1", "XAA")
        part, text = interrupted_fetch(env, b, lambda p: p.kill9())
        check(not text.endswith("synced\n"), "a map saved while fetching is marked synced")
        runs = [r for r in map_runs(text) if r[1] - r[0] >= (1 << 20)]
        check(runs, f"no run of 1 MiB in the map: {text}")
        begin = runs[0][0] + (256 << 10)
        with open(part, "r+b") as f:
            f.seek(begin)
            f.write(b"\0" * (64 << 10))
        proxy = env.proxy(["--connections", "2"])
        status_code, body, head = fetch(download_url(proxy, b))
        check(status_code == 200 and sha256(body) == sim_sha256(env.sim, b),
              f"after the lost pages: {status_code}, SHA-256 {'ok' if sha256(body) == sim_sha256(env.sim, b) else 'differs'}")
        log = proxy.tail(200)
        check("not on disk as fetched" in log and "resumed after an unclean stop" in log,
              f"the check is not logged: {log}")
        wait_until(lambda: any(e["filename"] == b["binary_name"] and e["verified"]
                               for e in status(proxy)["firmware"]["cache"]["builds"]),
                   "the build verified")


@case
def graceful_stop_map_is_trusted(paths):
    """SIGTERM mid-fetch: the part is synced and its map marked so; the restart trusts it (no
    re-read of the bytes, no refetch) and completes with the right bytes."""
    with Env(paths) as env:
        b = build_of(env.sim, "SM-S931U1", "XAA")
        _, text = interrupted_fetch(env, b, lambda p: p.stop())
        check(text.endswith("\nsynced\n"), f"the map after SIGTERM is not marked synced: {text[-80:]}")
        first = served(env.sim, b)
        proxy = env.proxy(["--connections", "2"])
        status_code, body, _ = fetch(download_url(proxy, b))
        check(status_code == 200 and sha256(body) == sim_sha256(env.sim, b), "after SIGTERM")
        check("unclean stop" not in proxy.tail(200), "a synced map was checked again")
        total = served(env.sim, b)
        check(total <= 1.05 * b["encrypted_size"],
              f"both runs fetched {total} bytes of {b['encrypted_size']} (first {first})")


@case
def torn_entries_never_served(paths):
    """Leftovers and torn entries are removed at start-up and fetched again, never served."""
    with Env(paths) as env:
        b = build_of(env.sim, "SM-G990B", "BTU")
        want = sim_sha256(env.sim, b)
        proxy = env.proxy()
        status_code, body, _ = fetch(download_url(proxy, b))
        check(status_code == 200 and sha256(body) == want, "first download")
        proxy.stop()
        builds = os.path.join(env.cache, "builds")
        partial = os.path.join(env.cache, "partial")
        data = os.path.join(builds, b["binary_name"].rsplit(".", 1)[0])
        # A builds/ file with the wrong size (its metadata is valid).
        with open(data, "r+b") as f:
            f.truncate(b["plain_size"] // 2)
        # Metadata that does not parse, beside a data file of the right size.
        with open(os.path.join(builds, "X.zip"), "wb") as f:
            f.write(b"\0" * 1000)
        with open(os.path.join(builds, "X.zip.json"), "w") as f:
            f.write('{"format":1,"model":')
        # A data file without metadata, a temp file, an orphan map, a part without a map,
        # and a part shorter than its map says.
        for name, content in [("builds/Y.zip", b"y" * 100), ("builds/Z.zip.json.tmp", b"{"),
                              ("partial/A.zip.part.map", b"x"), ("partial/B.zip.part", b"b" * 64)]:
            with open(os.path.join(env.cache, name), "wb") as f:
                f.write(content)
        with open(os.path.join(partial, "C.zip.part"), "wb") as f:
            f.write(b"c" * 32)
        with open(os.path.join(partial, "C.zip.part.map"), "w") as f:
            f.write("fusproxy-present 1 1048592\n0 1048592 0\n")
        proxy = env.proxy()
        left = cache_files(env.cache)
        check(left == {}, f"leftovers not removed: {left}")
        log = proxy.tail(60)
        check(log.count("cache: removed") >= 9, f"removals not logged:\n{log}")
        env.sim.reset_stats()
        status_code, body, _ = fetch(download_url(proxy, b))
        check(status_code == 200 and sha256(body) == want, "download after the torn entry")
        check(served(env.sim, b) >= b["encrypted_size"], "the torn build was not fetched again")


# --- offline ----------------------------------------------------------------------------------

@case
def offline_serves_cached_builds(paths):
    """Simulator stopped, fusproxy restarted: cached builds by version and latest still serve."""
    with Env(paths) as env:
        b = build_of(env.sim, "SM-G990B", "BTU")
        want = sim_sha256(env.sim, b)
        proxy = env.proxy()
        _, enc_online, _ = fetch(download_url(proxy, b) + "?encrypted=1")
        status_code, body, _ = fetch(download_url(proxy, b, latest=True))
        check(status_code == 200 and sha256(body) == want, "online download")
        proxy.stop()
        env.sim.stop()
        proxy = env.proxy()
        status_code, body, head = fetch(download_url(proxy, b))
        check(status_code == 200, f"offline by version: {status_code} {head[:300]}")
        check(sha256(body) == want, "offline by version: SHA-256 differs")
        status_code, body, head = fetch(download_url(proxy, b, latest=True))
        check(status_code == 200, f"offline latest: {status_code} {head[:300]}")
        check(sha256(body) == want, "offline latest: SHA-256 differs")
        check("warning: 110" in head.lower(), f"offline latest is not marked stale:\n{head}")
        status_code, enc, _ = fetch(download_url(proxy, b) + "?encrypted=1")
        check(status_code == 200 and enc == enc_online, "offline ?encrypted=1 differs")
        check(zlib.crc32(enc) == b["crc32"], "offline ?encrypted=1: CRC-32 differs")
        reply = curl(proxy.url(f"/firmware/{b['model']}/{b['region']}/{version_id(b)}"))
        check(reply.status == 200 and reply.json()["plain_size"] == b["plain_size"],
              f"offline metadata: {reply}")
        reply = curl(proxy.url(f"/firmware/{b['model']}/{b['region']}/latest"))
        check(reply.status == 200 and reply.json()["version"] == b["version"],
              f"offline latest metadata: {reply}")


# --- eviction and a full cache ----------------------------------------------------------------

@case
def eviction_lru_never_in_use(paths):
    """A limit that holds two builds: the LRU idle one goes, the one being read stays; 507 when
    every cached build is in use."""
    with Env(paths) as env:
        # A 2 MiB, B 24 MiB (read slowly: more than the socket buffers hold), C 8 MiB.
        a = build_of(env.sim, "SM-G990B", "BTU")
        bb = build_of(env.sim, "SM-A207F", "SER")
        c = [x for x in env.sim.builds() if x["model"] == "SM-S931U1" and x["beta"]
             and x["hosted"]][0]
        limit = bb["plain_size"] + c["plain_size"] + 100_000
        proxy = env.proxy(["--cache-max-bytes", str(limit)])
        for x in (a, bb):
            status_code, body, _ = fetch(download_url(proxy, x))
            check(status_code == 200 and sha256(body) == sim_sha256(env.sim, x), f"{x['version']}")
        # B is being read (slowly) while C arrives: A (least recently used, idle) goes.
        slow = held_reader(download_url(proxy, bb))
        wait_until(lambda: any(e["readers"] > 0 for e in status(proxy)["firmware"]["cache"]
                               ["builds"]), "the slow reader to pin B")
        status_code, body, head = fetch(download_url(proxy, c))
        check(status_code == 200 and sha256(body) == sim_sha256(env.sim, c), f"C: {head[:200]}")
        names = {e["filename"] for e in status(proxy)["firmware"]["cache"]["builds"]}
        check(a["binary_name"] not in names, f"A was not evicted: {names}")
        check(bb["binary_name"] in names and c["binary_name"] in names, f"kept: {names}")
        files = cache_files(env.cache)
        check(not any(a["binary_name"].rsplit(".", 1)[0] in n for n in files), f"A's files: {files}")
        # B and C both read now: A has no room, a clear 507.
        slow2 = held_reader(download_url(proxy, c))
        wait_until(lambda: sum(e["readers"] > 0 for e in status(proxy)["firmware"]["cache"]
                               ["builds"]) == 2, "both readers")
        reply = curl(download_url(proxy, a))
        check(reply.status == 507 and reply.error_code() == "cache_full", f"A with a full cache: {reply}")
        for held in (slow, slow2):
            held.close()
        wait_until(lambda: all(e["readers"] == 0 for e in status(proxy)["firmware"]["cache"]
                               ["builds"]), "readers gone")
        status_code, body, _ = fetch(download_url(proxy, a))
        check(status_code == 200 and sha256(body) == sim_sha256(env.sim, a), "A once room is free")


@case
def answers_without_body_never_evict(paths):
    """A limit that holds one build: HEAD, 304 and 416 for another build (and a GET's
    headers, before its body) evict nothing; the GET that reads the other build does."""
    with Env(paths) as env:
        a = build_of(env.sim, "SM-A207F", "SER")  # 24 MiB
        c = [x for x in env.sim.builds() if x["model"] == "SM-S931U1" and x["beta"]
             and x["hosted"]][0]  # 8 MiB
        proxy = env.proxy(["--cache-max-bytes", str(a["plain_size"] + 100_000)])
        status_code, body, _ = fetch(download_url(proxy, a))
        check(status_code == 200 and sha256(body) == sim_sha256(env.sim, a), "A")

        def cached():
            return {e["filename"] for e in status(proxy)["firmware"]["cache"]["builds"]
                    if e["verified"]}
        check(cached() == {a["binary_name"]}, f"A cached: {cached()}")
        head = curl(download_url(proxy, c), "-I")
        check(head.status == 200 and head.headers.get("content-length") == str(c["plain_size"]),
              f"HEAD C: {head.status} {head.headers}")
        etag = head.headers.get("etag", "")
        check(curl(download_url(proxy, c), "-H", f"If-None-Match: {etag}").status == 304,
              "C: If-None-Match")
        check(curl(download_url(proxy, c), "-r", f"{c['plain_size'] + 10}-").status == 416,
              "C: unsatisfiable range")
        check(cached() == {a["binary_name"]}, f"A evicted without a body read: {cached()}")
        served_before = served(env.sim, a)
        status_code, body, _ = fetch(download_url(proxy, a))
        check(status_code == 200 and sha256(body) == sim_sha256(env.sim, a)
              and served(env.sim, a) == served_before, "A again, from the cache")
        status_code, body, _ = fetch(download_url(proxy, c))
        check(status_code == 200 and sha256(body) == sim_sha256(env.sim, c), "C")
        wait_until(lambda: cached() == {c["binary_name"]}, "A evicted for C's body")


@case
def disk_full_is_clear_and_consistent(paths):
    """ENOSPC on a cache write (test hook) fails that request; nothing torn is published and
    the next request (disk free again) completes."""
    with Env(paths) as env:
        b = build_of(env.sim, "SM-G990B", "BTU")
        want = sim_sha256(env.sim, b)
        proxy = env.proxy(["--test-disk-full-after", "1000000"])
        status_code, body, _ = fetch(download_url(proxy, b))
        check(len(body) < b["plain_size"] or sha256(body) != want or status_code != 200,
              "a full disk went unnoticed")
        st = status(proxy)
        jobs = st["firmware"]["downloads"]
        check(any("space" in j.get("error", "") or "full" in j.get("error", "") for j in jobs),
              f"no clear error in /api/status: {jobs}")
        files = cache_files(env.cache)
        check(not any(n.startswith("builds/") for n in files), f"a torn build was published: {files}")
        proxy.stop()
        proxy = env.proxy()
        status_code, body, _ = fetch(download_url(proxy, b))
        check(status_code == 200 and sha256(body) == want, "after the disk is free again")
        # tmpfs, when this sandbox may mount: a cache smaller than the build answers 507.
        mnt = os.path.join(env.dir, "tiny")
        os.makedirs(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt],
                          capture_output=True).returncode == 0:
            try:
                env.cache = mnt
                small = env.proxy()
                reply = curl(download_url(small, b))
                check(reply.status == 507 and reply.error_code() == "cache_full", f"tmpfs: {reply}")
                small.stop()
            finally:
                subprocess.run(["umount", mnt])


# --- mirror management ------------------------------------------------------------------------

def request(proxy, method, path, body=None, token="t0k"):
    args = ["-X", method, "-H", f"Authorization: Bearer {token}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
    return curl(proxy.url(path), *args)


@case
def mirror_management(paths):
    """--mirror and POST /api/mirror fetch the newest build ahead of time; GET lists, DELETE
    removes; DELETE /api/cache/{name} refuses a build in use (409) and removes an idle one."""
    with Env(paths) as env:
        g = build_of(env.sim, "SM-G990B", "BTU")
        a = build_of(env.sim, "SM-A207F", "SER")
        proxy = env.proxy(["--token", "t0k", "--mirror", "sm-g990b/btu"])
        check(request(proxy, "GET", "/api/mirror", token="bad").status == 401, "token not needed")

        def mirrored(name):
            return any(e["filename"] == name and e["verified"]
                       for e in status_with_token(proxy)["firmware"]["cache"]["builds"])
        wait_until(lambda: mirrored(g["binary_name"]), "the --mirror build fetched", timeout=20)
        reply = request(proxy, "POST", "/api/mirror", {"model": "SM-A207F", "region": "ser"})
        check(reply.status == 200 and reply.json()["region"] == "SER", f"POST: {reply}")
        check(request(proxy, "POST", "/api/mirror", {"model": "bad model"}).status == 400,
              "a malformed POST was accepted")
        wait_until(lambda: mirrored(a["binary_name"]), "the POSTed mirror fetched", timeout=20)
        listed = request(proxy, "GET", "/api/mirror").json()["mirrors"]
        check({(m["model"], m["region"]) for m in listed} ==
              {("SM-G990B", "BTU"), ("SM-A207F", "SER")}, f"GET /api/mirror: {listed}")
        check(all(m["state"] == "verified" and m["version"] for m in listed), f"{listed}")
        check(request(proxy, "DELETE", "/api/mirror/SM-A207F/SER").status == 200, "DELETE")
        check(request(proxy, "DELETE", "/api/mirror/SM-A207F/SER").status == 404, "DELETE again")
        # A slow reader pins the 24 MiB build: 409; once gone: removed.
        slow = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "--limit-rate", "100k", "-H",
                                 "Authorization: Bearer t0k", download_url(proxy, a)])
        wait_until(lambda: any(e["readers"] > 0 for e in status_with_token(proxy)["firmware"]
                               ["cache"]["builds"]), "the reader")
        reply = request(proxy, "DELETE", f"/api/cache/{a['binary_name']}")
        check(reply.status == 409 and reply.error_code() == "in_use", f"in use: {reply}")
        slow.kill()
        slow.wait()
        wait_until(lambda: request(proxy, "DELETE", f"/api/cache/{a['binary_name']}").status
                   == 200, "removal once idle")
        check(not mirrored(a["binary_name"]), "still listed after DELETE")
        check(not os.path.exists(os.path.join(env.cache, "builds",
                                              a["binary_name"].rsplit(".", 1)[0])), "file left")
        check(request(proxy, "DELETE", "/api/cache/nope.zip").status == 404, "unknown name")


def status_with_token(proxy):
    return json.loads(curl(proxy.url("/api/status"), "-H", "Authorization: Bearer t0k").body)


def main():
    return run_cases(CASES)


if __name__ == "__main__":
    sys.exit(main())
