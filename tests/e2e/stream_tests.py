#!/usr/bin/env python3
"""Streaming downloads end to end: fus-sim and fusproxy as processes on ephemeral loopback
ports, real clients (curl, aria2c, wget), the simulator's SHA-256/CRC-32 as the truth.

usage: stream_tests.py --fusproxy PATH --fus-sim PATH [--source-dir DIR] CASE...  (--list)
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAST, Failure, Proxy, Sim, check, curl, run_cases, wait_until  # noqa: E402

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def build_of(sim, model, region):
    """The simulator's newest stable hosted build of a pair (what `latest` serves)."""
    for b in sim.builds():
        if (b["model"] == model and b["region"] == region and b["hosted"] and not b["beta"]
                and not b["answers_with_newest"]):
            return b
    raise Failure(f"no build for {model}/{region}")


def sim_sha256(sim, b):
    return sim.get_json(f"/_sim/builds/{b['binary_name']}/sha256")["sha256"]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def crc32_file(path):
    crc = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                return crc
            crc = zlib.crc32(block, crc)


def run(cmd, cwd=None, timeout=120):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def bytes_served(sim, b):
    return sim.stats().get("builds", {}).get(b["binary_name"], {}).get("bytes_served", 0)


def download_path(model, region, version="latest"):
    return f"/firmware/{model}/{region}/{version}/download"


def fetch_to(url, path, *args):
    r = run(["curl", "-sS", "--globoff", "-o", path, "-w", "%{http_code}", *args, url])
    return int(r.stdout.strip() or 0), r


# ------------------------------------------------------------------------------ curl -OJ

@case
def curl_oj_latest(paths):
    """curl -OJ of latest/download: named plain_filename, the simulator's plain SHA-256; a
    HEAD before it answers from metadata and starts no fetch."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy, tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-A207F", "SER")
        url = proxy.url(download_path("SM-A207F", "SER"))
        check(curl(proxy.url("/firmware/SM-A207F/SER/latest")).status == 200, "metadata")
        before = bytes_served(sim, b)  # the last block, read for the plain size
        h = run(["curl", "-sS", "-I", url])
        check(" 200" in h.stdout.splitlines()[0], f"HEAD: {h.stdout}")
        headers = h.stdout.lower()
        check(f"content-length: {b['plain_size']}" in headers, f"HEAD length: {h.stdout}")
        check("accept-ranges: bytes" in headers and "etag: \"" in headers, f"HEAD: {h.stdout}")
        check("content-type: application/zip" in headers, f"HEAD type: {h.stdout}")
        check(bytes_served(sim, b) == before, f"HEAD fetched bytes: {sim.stats()['builds']}")

        r = run(["curl", "-sS", "-f", "-OJ", url], cwd=d)
        check(r.returncode == 0, f"curl -OJ: {r.stderr}")
        name = b["binary_name"].rsplit(".", 1)[0]
        check(os.listdir(d) == [name], f"curl -OJ named it {os.listdir(d)}, want {name}")
        check(sha256_file(os.path.join(d, name)) == sim_sha256(sim, b), "SHA-256 differs")
        # Fetched once: the encrypted size plus the metadata's last block.
        served = bytes_served(sim, b)
        check(served <= b["encrypted_size"] + 64, f"upstream bytes {served}")
        status = curl(proxy.url("/api/status")).json()
        jobs = status["firmware"]["downloads"]
        check(any(j["filename"] == b["binary_name"] and j["state"] == "verified" for j in jobs),
              f"status: {jobs}")
        # Served again from the verified file: same bytes, no upstream download.
        os.unlink(os.path.join(d, name))
        r = run(["curl", "-sS", "-f", "-OJ", url], cwd=d)
        check(r.returncode == 0 and sha256_file(os.path.join(d, name)) == sim_sha256(sim, b),
              "second download")
        check(bytes_served(sim, b) == served, "a verified build was fetched again")


@case
def every_build_plain_and_encrypted(paths):
    """Each built-in build (ENC4, ENC2, a size that is a multiple of 16) streams plain with
    the simulator's SHA-256 and encrypted with its CRC-32 and size."""
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--chunk-size", "256K"]) as proxy, \
            tempfile.TemporaryDirectory() as d:
        for model, region in (("SM-G990B", "BTU"), ("SM-G900F", "DBT"), ("SM-S931U1", "XAA")):
            b = build_of(sim, model, region)
            vid = b["served_version"].replace("/", "_")
            plain = os.path.join(d, "plain")
            enc = os.path.join(d, "enc")
            # The encrypted one first: it starts the job, the plain one joins or hits it.
            st, r = fetch_to(proxy.url(download_path(model, region, vid) + "?encrypted=1"), enc,
                             "-D", os.path.join(d, "h"))
            check(st == 200, f"{model} encrypted: {st} {r.stderr}")
            check(os.path.getsize(enc) == b["encrypted_size"], f"{model} encrypted size")
            check(crc32_file(enc) == b["crc32"], f"{model}: encrypted CRC-32 differs")
            with open(os.path.join(d, "h")) as f:
                h = f.read().lower()
            check(f'filename="{b["binary_name"].lower()}"' in h, f"{model} enc name: {h}")
            check("application/octet-stream" in h and "-enc\"" in h, f"{model} enc headers: {h}")
            st, r = fetch_to(proxy.url(download_path(model, region, vid)), plain)
            check(st == 200 and os.path.getsize(plain) == b["plain_size"], f"{model} plain")
            check(sha256_file(plain) == sim_sha256(sim, b), f"{model}: plain SHA-256 differs")


# ------------------------------------------------------------------- resuming clients

@case
def curl_resume(paths):
    """curl -C - completes a file cut short (a prefix ending mid-block), and a file whose
    first download was killed mid-way; both have the right SHA-256."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy, tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-S931U1", "XAA")
        url = proxy.url(download_path("SM-S931U1", "XAA"))
        out = os.path.join(d, "fw.zip")
        st, _ = fetch_to(url, out, "-r", "0-5000000")
        check(st == 206 and os.path.getsize(out) == 5000001, f"prefix: {st}")
        st, r = fetch_to(url, out, "-C", "-")
        check(st == 206, f"curl -C -: {st} {r.stderr}")
        check(sha256_file(out) == sim_sha256(sim, b), "resumed file: SHA-256 differs")

    # Killed mid-way (slow client), then resumed against a fresh proxy: cold job again.
    with Sim(paths) as sim, Proxy(paths, sim) as proxy, tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-S931U1", "XAA")
        url = proxy.url(download_path("SM-S931U1", "XAA"))
        out = os.path.join(d, "fw.zip")
        p = subprocess.Popen(["curl", "-sS", "--limit-rate", "4M", "-o", out, url],
                             stderr=subprocess.DEVNULL)
        wait_until(lambda: os.path.exists(out) and os.path.getsize(out) > 3_000_000,
                   "a partial download", timeout=30)
        p.send_signal(signal.SIGKILL)
        p.wait()
        size = os.path.getsize(out)
        check(0 < size < b["plain_size"], f"partial size {size}")
        st, r = fetch_to(url, out, "-C", "-")
        check(st == 206, f"curl -C - after kill: {st} {r.stderr}")
        check(sha256_file(out) == sim_sha256(sim, b), "resumed after kill: SHA-256 differs")


@case
def aria2c_segments(paths):
    """aria2c -x 8 -s 8 (eight ranged connections at once into a cold build; the per-client
    download limit, 4 by default, is raised so that all eight are served)."""
    extra = ["--chunk-size", "2M", "--max-downloads-per-client", "16"]
    with Sim(paths) as sim, Proxy(paths, sim, extra=extra) as proxy, \
            tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-S931U1", "XAA")
        r = run(["aria2c", "-q", "-x", "8", "-s", "8", "-k", "1M", "--allow-overwrite=true",
                 "-d", d, "-o", "fw.zip", proxy.url(download_path("SM-S931U1", "XAA"))])
        check(r.returncode == 0, f"aria2c: {r.stdout} {r.stderr}")
        check(sha256_file(os.path.join(d, "fw.zip")) == sim_sha256(sim, b), "aria2c SHA-256")


@case
def wget_continue(paths):
    """wget -c completes a partial file."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy, tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-A207F", "SER")
        url = proxy.url(download_path("SM-A207F", "SER"))
        out = os.path.join(d, "fw.zip")
        st, _ = fetch_to(url, out, "-r", "0-7777776")
        check(st == 206, f"prefix {st}")
        r = run(["wget", "-q", "-c", "-O", out, url])
        check(r.returncode == 0, f"wget -c: {r.stderr}")
        check(sha256_file(out) == sim_sha256(sim, b), "wget -c SHA-256")
        os.unlink(out)
        r = run(["wget", "-q", "--content-disposition", url], cwd=d)
        name = b["binary_name"].rsplit(".", 1)[0]
        check(r.returncode == 0 and os.listdir(d) == [name], f"wget names it {os.listdir(d)}")


# ------------------------------------------------------------------- Range edge cases

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """Debian's nginx serving one directory on loopback: the static reference."""

    def __init__(self, root):
        self.dir = tempfile.mkdtemp(prefix="e2e-nginx-")
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off; worker_processes 1; pid {self.dir}/pid;
error_log {self.dir}/error.log;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile on; etag on;
  client_body_temp_path {self.dir}; proxy_temp_path {self.dir}; fastcgi_temp_path {self.dir};
  uwsgi_temp_path {self.dir}; scgi_temp_path {self.dir};
  server {{ listen 127.0.0.1:{self.port}; root {root}; }} }}
""")
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self._up(), "nginx")

    def _up(self):
        if self.proc.poll() is not None:
            raise Failure("nginx exited")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def ranged(url, rng, *extra):
    """Status, Content-Range and body of one request with a Range header."""
    with tempfile.TemporaryDirectory() as d:
        body, head = os.path.join(d, "b"), os.path.join(d, "h")
        args = ["-H", f"Range: {rng}"] if rng else []
        r = run(["curl", "-sS", "-o", body, "-D", head, "-w", "%{http_code}", *args, *extra,
                 url])
        hdrs = {}
        with open(head) as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
        data = b""
        if os.path.exists(body):  # curl writes no file for an empty body (304)
            with open(body, "rb") as f:
                data = f.read()
        return int(r.stdout), hdrs, data


@case
def range_edge_cases(paths):
    """Single, suffix, open, block-crossing, unsatisfiable ranges and If-Range/If-None-Match
    on a COLD build (each request starts or joins the fetch) give what a static server gives
    for the plain file: checked against the file's bytes, and against nginx when installed."""
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--chunk-size", "4M"]) as proxy, \
            tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-G990B", "BTU")  # 2 MiB, a multiple of 16
        n = b["plain_size"]
        url = proxy.url(download_path("SM-G990B", "BTU"))
        # Ranges first (cold), the full file last.
        cases = [("bytes=0-0", 0, 0), (f"bytes={n - 1}-{n - 1}", n - 1, n - 1),
                 ("bytes=-1", n - 1, n - 1), ("bytes=15-16", 15, 16), ("bytes=10-40", 10, 40),
                 (f"bytes={n - 17}-", n - 17, n - 1), ("bytes=-100", n - 100, n - 1),
                 ("bytes=1048570-1048600", 1048570, 1048600), (f"bytes=-{n + 5}", 0, n - 1),
                 ("bytes=1000-", 1000, n - 1), (f"bytes=5-{n + 100}", 5, n - 1)]
        got = {}
        for rng, first, last in cases:
            st, h, body = ranged(url, rng)
            check(st == 206, f"{rng}: {st}")
            check(h.get("content-range") == f"bytes {first}-{last}/{n}", f"{rng}: {h}")
            check(len(body) == last - first + 1, f"{rng}: {len(body)} bytes")
            got[rng] = body
        st, h, body = ranged(url, f"bytes={n}-")
        check(st == 416 and h.get("content-range") == f"bytes */{n}", f"416: {st} {h}")
        st, h, full = ranged(url, None)
        check(st == 200 and len(full) == n, f"full: {st}")
        check(hashlib.sha256(full).hexdigest() == sim_sha256(sim, b), "full SHA-256")
        for rng, first, last in cases:
            check(got[rng] == full[first:last + 1], f"{rng}: wrong bytes")
        st, h, body = ranged(url, "bytes=abc")
        check(st == 200 and len(body) == n, f"invalid Range ignored: {st}")
        etag = h["etag"]
        st, h, body = ranged(url, "bytes=100-199", "-H", f"If-Range: {etag}")
        check(st == 206 and body == full[100:200], f"If-Range match: {st}")
        st, h, body = ranged(url, "bytes=100-199", "-H", 'If-Range: "other"')
        check(st == 200 and body == full, f"If-Range mismatch: {st}")
        st, h, body = ranged(url, None, "-H", f"If-None-Match: {etag}")
        check(st == 304 and body == b"", f"If-None-Match: {st}")
        # The encrypted variant's ETag differs and its ranges are the encrypted bytes.
        st, h2, ebody = ranged(url + "?encrypted=1", "bytes=16-47")
        check(st == 206 and h2["etag"] != etag and len(ebody) == 32, f"enc range: {st} {h2}")
        st, _, eall = ranged(url + "?encrypted=1", None)
        check(st == 200 and eall[16:48] == ebody and zlib.crc32(eall) == b["crc32"], "enc bytes")

        if shutil.which("nginx"):
            with open(os.path.join(d, "fw.zip"), "wb") as f:
                f.write(full)
            os.chmod(d, 0o755)  # nginx workers may run as another user
            os.chmod(os.path.join(d, "fw.zip"), 0o644)
            ng = Nginx(d)
            try:
                # ("bytes=abc" differs on purpose: nginx answers 416, api.md ignores it.)
                for rng, _, _ in cases + [(f"bytes={n}-", 0, 0)]:
                    s1, h1, b1 = ranged(url, rng)
                    s2, h2, b2 = ranged(ng.url("/fw.zip"), rng)
                    check((s1, h1.get("content-range"), b1) == (s2, h2.get("content-range"), b2)
                          or (s1 == s2 == 416), f"{rng}: fusproxy {s1} vs nginx {s2}")
            finally:
                ng.stop()


# ------------------------------------------------------------------------------ faults

def download_under_faults(sim, proxy, out, faults, min_drops, label):
    """SM-S931U1/XAA downloaded to `out` with `faults` armed after the metadata (it reads the
    last block through the download route too): the simulator's SHA-256, faults fired."""
    b = build_of(sim, "SM-S931U1", "XAA")
    check(curl(proxy.url("/firmware/SM-S931U1/XAA/latest")).status == 200, label + "metadata")
    sim.arm(faults)
    st, r = fetch_to(proxy.url(download_path("SM-S931U1", "XAA")), out)
    check(st == 200, f"{label}download: {st} {r.stderr}")
    check(sha256_file(out) == sim_sha256(sim, b), label + "SHA-256 differs under faults")
    fired = sim.stats()["faults_fired"]
    check(fired.get("drop-after", 0) >= min_drops and fired.get("auth401", 0) >= 1,
          f"{label}faults did not fire: {fired}")
    return b


@case
def faults_invisible(paths):
    """Drops every few MiB and a burst of 401s on the downloads: the client never notices.
    (Claims of 8 MiB from the start, so that ranges run past the drop point.)"""
    with Sim(paths) as sim, Proxy(paths, sim, extra=FAST + ["--chunk-size", "8M"]) as proxy, \
            tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "fw.zip")
        b = download_under_faults(sim, proxy, out,
                                  "drop-after=3MiB*20,auth401@download*5,status=503@download*2",
                                  min_drops=5, label="")
        st, r = fetch_to(proxy.url(download_path("SM-S931U1", "XAA") + "?encrypted=1"), out)
        check(st == 200 and crc32_file(out) == b["crc32"], "encrypted under faults")


@case
def landing_threads(paths):
    """Landing inline (--fetch-threads 0) and on a pool of 4 threads, 8 connections, drops
    and a 401 burst: the same plain SHA-256, the build verified, the pool's threads present."""
    tasks = {}
    for threads in (0, 4):
        extra = FAST + ["--fetch-threads", str(threads), "--connections", "8",
                        "--chunk-size", "4M"]
        with Sim(paths) as sim, Proxy(paths, sim, extra=extra) as proxy, \
                tempfile.TemporaryDirectory() as d:
            b = download_under_faults(sim, proxy, os.path.join(d, "fw.zip"),
                                      "drop-after=1MiB*12,auth401@download*3", min_drops=6,
                                      label=f"--fetch-threads {threads}: ")
            def verified():
                builds = json.loads(curl(proxy.url("/api/status")).body)["firmware"]["cache"]["builds"]
                return any(x["filename"] == b["binary_name"] and x["verified"] for x in builds)
            wait_until(verified, f"--fetch-threads {threads}: the build verified in the cache")
            tasks[threads] = len(os.listdir(f"/proc/{proxy.proc.pid}/task"))
    check(tasks[4] - tasks[0] == 4, f"the landing pool's threads: {tasks}")


@case
def published_only_after_fdatasync(paths):
    """The fetched file is made durable (fdatasync of the part file) before the rename that
    makes it a verified build: traced with strace attached to the running fusproxy."""
    with Sim(paths) as sim, Proxy(paths, sim, extra=FAST) as proxy, \
            tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-G990B", "BTU")
        trace = os.path.join(d, "trace")
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-y", "--seccomp-bpf", "-o", trace,
                                   "-e", "trace=fdatasync,fsync,rename,renameat,renameat2",
                                   "-p", str(proxy.proc.pid)], stderr=subprocess.PIPE)

        def traced():
            if tracer.poll() is not None:
                raise Failure(f"strace exited: {tracer.stderr.read().decode(errors='replace')}")
            with open(f"/proc/{proxy.proc.pid}/status") as f:
                return any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in f)
        try:
            wait_until(traced, "strace attached")
            out = os.path.join(d, "fw.zip")
            st, r = fetch_to(proxy.url(download_path("SM-G990B", "BTU")), out)
            check(st == 200 and sha256_file(out) == sim_sha256(sim, b), f"download {st}")
        finally:
            tracer.terminate()
            tracer.wait()
        with open(trace) as f:
            lines = f.read().splitlines()
        plain = b["binary_name"].rsplit(".", 1)[0]
        synced = [i for i, line in enumerate(lines)
                  if "fdatasync(" in line and plain + ".part>" in line and "= 0" in line]
        renamed = [i for i, line in enumerate(lines)
                   if "rename" in line and plain + ".part" in line and "builds/" + plain in line]
        check(synced and renamed, "no fdatasync or rename of the part file traced:\n" +
              "\n".join(lines[-20:]))
        check(synced[0] < renamed[0], "renamed before fdatasync:\n" + "\n".join(lines))


@case
def rate_limited_upstream(paths):
    """Upstream refuses more than 2 connections per session (429): fewer connections, same
    bytes."""
    with Sim(paths) as sim, Proxy(paths, sim, extra=FAST + ["--chunk-size", "2M"]) as proxy, \
            tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-S931U1", "XAA")
        check(curl(proxy.url("/firmware/SM-S931U1/XAA/latest")).status == 200, "metadata")
        sim.arm("max-conns=2")
        sim.post("/_sim/throttle", b'{"bps": 20000000}')  # so that connections overlap
        out = os.path.join(d, "fw.zip")
        st, r = fetch_to(proxy.url(download_path("SM-S931U1", "XAA")), out)
        check(st == 200 and sha256_file(out) == sim_sha256(sim, b), f"429s: {st} {r.stderr}")
        jobs = curl(proxy.url("/api/status")).json()["firmware"]["downloads"]
        check(jobs and jobs[0]["rate_limited"] > 0 and jobs[0]["connections_target"] < 8,
              f"no shedding seen: {jobs}")


@case
def crc_mismatch_never_verified(paths):
    """BINARY_CRC announced wrong: the download is cut before its last byte, the build is
    reported crc_mismatch (status, metrics) and never published."""
    with Sim(paths, faults="bad-crc@inform*1") as sim, Proxy(paths, sim, extra=FAST) as proxy, \
            tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-A207F", "SER")
        out = os.path.join(d, "fw.zip")
        st, r = fetch_to(proxy.url(download_path("SM-A207F", "SER")), out)
        check(r.returncode != 0, "a download that failed its CRC completed")
        check(os.path.getsize(out) < b["plain_size"], "all bytes were sent")
        jobs = curl(proxy.url("/api/status")).json()["firmware"]["downloads"]
        check(jobs and jobs[0]["state"] == "crc_mismatch" and not jobs[0]["verified"],
              f"status: {jobs}")
        metrics = curl(proxy.url("/metrics")).body
        check("fusproxy_fetch_crc_mismatch_total 1" in metrics, "metrics: no crc mismatch")
        builds = os.path.join(proxy.cache_dir, "cache", "builds")
        check(not os.path.exists(builds) or not os.listdir(builds), "published anyway")


@case
def upstream_gone_cuts_client(paths):
    """Upstream dies mid-download: retries run out and the client sees a cut connection,
    never a short file passed off as complete."""
    with Sim(paths) as sim, \
            Proxy(paths, sim, extra=["--retry-base-ms", "20", "--retry-attempts", "3",
                                     "--upstream-timeout", "2"]) as proxy, \
            tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-S931U1", "XAA")
        check(curl(proxy.url("/firmware/SM-S931U1/XAA/latest")).status == 200, "metadata")
        sim.post("/_sim/throttle", b'{"bps": 2000000}')
        out = os.path.join(d, "fw.zip")
        p = subprocess.Popen(["curl", "-sS", "-o", out, "-w", "%{http_code}",
                              proxy.url(download_path("SM-S931U1", "XAA"))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: os.path.exists(out) and os.path.getsize(out) > 100_000, "bytes flow")
        sim.stop()
        out_text, err = p.communicate(timeout=60)
        check(p.returncode != 0, f"curl succeeded after upstream died: {err}")
        check(os.path.getsize(out) < b["plain_size"], "complete file")
        jobs = curl(proxy.url("/api/status")).json()["firmware"]["downloads"]
        check(jobs and jobs[0]["state"] == "failed" and jobs[0].get("error"), f"status: {jobs}")


# ------------------------------------------------------------------------- zip members

@case
def zip_members(paths):
    """/files lists what Python's zipfile reads from the downloaded zip (name, size, header
    offset, method) without starting the full fetch; /files/{name} streams each member
    uncompressed (stored and deflated), with Range and HEAD."""
    import io
    import zipfile
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--chunk-size", "256K"]) as proxy:
        for model, region in (("SM-G990B", "BTU"), ("SM-G900F", "DBT")):
            b = build_of(sim, model, region)
            base = f"/firmware/{model}/{region}/latest"
            r = curl(proxy.url(base + "/files"))
            check(r.status == 200, f"{model} files: {r!r}")
            listed = r.json()
            served = bytes_served(sim, b)
            check(served < b["encrypted_size"] // 2,
                  f"{model}: listing fetched {served} of {b['encrypted_size']} bytes")
            st, _, whole = ranged(proxy.url(base + "/download"), None)
            check(st == 200, f"{model} download")
            z = zipfile.ZipFile(io.BytesIO(whole))
            want = [{"name": i.filename, "size": i.file_size, "offset": i.header_offset,
                     "method": {0: "stored", 8: "deflated"}[i.compress_type]}
                    for i in z.infolist()]
            check(listed == want, f"{model}: /files {listed} != zipfile {want}")
            for info in z.infolist():
                data = z.read(info.filename)
                url = proxy.url(f"{base}/files/{info.filename}")
                st, h, body = ranged(url, None)
                check(st == 200 and body == data, f"{model} {info.filename}: {st} {len(body)}")
                check(h.get("content-length") == str(len(data)), f"{info.filename}: {h}")
                check(h.get("content-type") == "application/octet-stream", f"{h}")
                st, h, body = ranged(url, "bytes=10-99")
                check(st == 206 and body == data[10:100], f"{info.filename} range: {st}")
                st, h, body = ranged(url, f"bytes=-{min(50, len(data))}")
                check(st == 206 and body == data[-min(50, len(data)):], f"{info.filename} tail")
                h = run(["curl", "-sS", "-I", url]).stdout.lower()
                check(f"content-length: {len(data)}" in h, f"member HEAD: {h}")
            st, _, _ = ranged(proxy.url(f"{base}/files/NO_SUCH_MEMBER.tar.md5"), None)
            check(st == 404, f"unknown member: {st}")


# ------------------------------------------------------------------ fusproxy get / versions

def upstream_flags(sim):
    return ["--fus-url", sim.base_url, "--cloud-url", sim.base_url, "--fota-url", sim.base_url]


@case
def get_and_resume(paths):
    """fusproxy get: SIGINT keeps OUTPUT.part and its map, -c fetches only what is missing;
    a partial file from another tool is resumed from its prefix; a corrupted prefix fails the
    CRC check (exit 5) and is never renamed to OUTPUT; versions lists the builds."""
    with Sim(paths) as sim, tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-S931U1", "XAA")
        want = sim_sha256(sim, b)
        out = os.path.join(d, "fw.zip")
        get = [paths.fusproxy, "get", "SM-S931U1", "XAA", "-o", out, "--chunk-size", "1M",
               "--connections", "4", *upstream_flags(sim)]
        r = run([paths.fusproxy, "versions", "SM-S931U1", "XAA", *upstream_flags(sim)])
        check(r.returncode == 0 and b["served_version"] in r.stdout, f"versions: {r.stdout}")
        r = run([paths.fusproxy, "versions", "SM-NOPE", "XAA", *upstream_flags(sim)])
        check(r.returncode == 3, f"versions of an unknown model: {r.returncode}")

        sim.post("/_sim/throttle", b'{"bps": 4000000}')
        p = subprocess.Popen(get, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        part, smap = out + ".part", out + ".part.map"
        def saved_bytes():  # the map is saved every 100 ms: wait for a few chunks in it
            try:
                with open(smap) as f:
                    return sum(int(e) - int(b) for b, e, _ in
                               (line.split() for line in f.read().splitlines()[1:]))
            except (OSError, ValueError):
                return 0
        # Enough present that refetching it would show beside the end game's hedges (a few
        # MiB of duplicates on this 48 MiB build, unthrottled on loopback).
        wait_until(lambda: saved_bytes() >= 20 << 20, "a saved map", timeout=30)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        check(p.returncode == 130, f"interrupted get: {p.returncode} {err}")
        check(os.path.exists(part) and os.path.exists(smap) and not os.path.exists(out),
              f"after SIGINT: {os.listdir(d)}")
        sim.post("/_sim/throttle", b'{"bps": 0}')
        sim.reset_stats()
        r = run(get + ["-c"])
        check(r.returncode == 0, f"get -c: {r.returncode} {r.stderr}")
        check(os.listdir(d) == ["fw.zip"] and sha256_file(out) == want, "get -c: SHA-256")
        # Its hedges and supervisor were joined before it returned (structured lifetimes).
        check("still running" not in r.stderr, f"get -c left tasks running: {r.stderr}")
        served = bytes_served(sim, b)
        check(served < b["encrypted_size"] - (10 << 20),
              f"get -c fetched {served} bytes again; its stderr: {r.stderr[-600:]}")

        # A prefix written by another tool (ends mid-block): resumed, verified.
        with open(out, "r+b") as f:
            f.truncate(10_000_001)
        r = run(get + ["-c"])
        check(r.returncode == 0 and sha256_file(out) == want, f"prefix -c: {r.stderr}")
        # Without -c an existing file is left alone.
        r = run(get)
        check(r.returncode == 1 and sha256_file(out) == want, "overwrote without -c")
        # A wrong prefix: the CRC-32 check fails, the file is not published as complete.
        with open(out, "r+b") as f:
            f.truncate(10_000_000)
            f.seek(5000)
            f.write(b"X")
        r = run(get + ["-c"])
        check(r.returncode == 5, f"corrupt prefix: {r.returncode} {r.stderr}")
        check(not os.path.exists(out), "a file that failed its CRC was published")


def main():
    return run_cases(CASES)


if __name__ == "__main__":
    sys.exit(main())
