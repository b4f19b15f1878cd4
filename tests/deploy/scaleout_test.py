#!/usr/bin/env python3
"""Scale-out test: one fus-sim, two fusproxy replicas and Debian's nginx running the shipped
deploy/nginx/fusproxy.conf (ports rewritten into a temporary copy), all on loopback.

  1. 20 clients ask nginx for one build's metadata at once: all 200, the same answer, all
     served by one replica (the consistent hash).
  2. 20 clients download one build through nginx at once: right size and SHA-256 (fus-sim's
     /_sim/builds/NAME/sha256), one replica, and fus-sim served the build about once
     (bytes_served <= 1.05 x its size). Each client connects from its own loopback address;
     the replicas trust nginx (--trusted-proxy 127.0.0.1) and log, and limit, each client
     by the address nginx puts in X-Forwarded-For.
  3. The replica that holds a build is killed (SIGKILL) while 20 clients download it: every
     client still finishes with the right SHA-256, resuming with Range/If-Range where its
     download was cut (as curl -C - or aria2c do); nginx sends the retries to the other
     replica. Without downloads yet (501), the same fail-over is checked with metadata.

Parts that need /download are reported PENDING while it answers 501 (the download pipeline
not merged yet); everything else must pass. Exit 0 passed, 1 failed, 77 skipped (no nginx).
Python 3 standard library only.
"""
import argparse
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
CLIENTS = 20


class Failure(Exception):
    pass


class DownloadsPending(Exception):
    """/download answered 501: the download pipeline is not there yet."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def wait_until(fn, what, timeout=15.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out waiting for {what}")
        time.sleep(interval)


def log(msg):
    print(f"scaleout: {msg}", flush=True)


# ---------------------------------------------------------------------------------------
# processes


class Process:
    """A child process with a log file; stopped (or killed) at the end."""

    def __init__(self, name, argv, workdir, port_file=None):
        self.name, self.argv, self.workdir = name, argv, workdir
        self.port_file = port_file
        self.log_path = os.path.join(workdir, name + ".log")
        self.proc = None
        self.port = None

    def start(self, timeout=15.0):
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        if self.port_file:
            def port():
                if self.proc.poll() is not None:
                    raise Failure(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
                try:
                    with open(self.port_file) as f:
                        text = f.read()
                except FileNotFoundError:
                    return None
                return int(text) if text.endswith("\n") else None
            self.port = wait_until(port, f"{self.name}'s port file", timeout)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if not self.alive():
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def tail(self, n=15):
        return "\n".join(self.text().splitlines()[-n:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, headers=None, timeout=60, method="GET", body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def rewrite_nginx_conf(text, listen_port, replica_ports):
    """The shipped config with its listen port and its upstream servers moved to loopback."""
    upstream = re.search(r"upstream\s+fusproxy\s*\{(.*?)\n\}", text, re.S)
    check(upstream, "deploy/nginx/fusproxy.conf has no `upstream fusproxy { ... }`")
    servers = re.findall(r"^\s*server\s+\S+", upstream.group(1), re.M)
    check(len(servers) == len(replica_ports),
          f"the shipped upstream has {len(servers)} servers, the test runs {len(replica_ports)}")
    ports = iter(replica_ports)
    block = re.sub(r"^(\s*server\s+)\S+?(?=[\s;])",
                   lambda m: f"{m.group(1)}127.0.0.1:{next(ports)}", upstream.group(1), flags=re.M)
    text = text[:upstream.start(1)] + block + text[upstream.end(1):]
    text, n = re.subn(r"^(\s*)listen\s+(?!\[)[^;]*;", rf"\1listen 127.0.0.1:{listen_port};", text,
                      flags=re.M)
    check(n == 1, f"expected one IPv4 `listen` in the shipped config, found {n}")
    return re.sub(r"^\s*listen\s+\[[^;]*;\n", "", text, flags=re.M)


def nginx_main_conf(tmp, site):
    # Everything nginx writes goes to tmp: temp paths, pid, logs.
    return f"""worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format upstreams '$request_id $http_x_request_id $status $body_bytes_sent '
                         '"$request" upstream=[$upstream_addr] upstream_status=[$upstream_status]';
    access_log {tmp}/nginx-access.log upstreams;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy_temp;
    fastcgi_temp_path {tmp}/fastcgi_temp;
    uwsgi_temp_path {tmp}/uwsgi_temp;
    scgi_temp_path {tmp}/scgi_temp;
    include {site};
}}
"""


# ---------------------------------------------------------------------------------------
# clients


class Progress:
    def __init__(self):
        self.lock = threading.Lock()
        self.max_received = 0

    def update(self, n):
        with self.lock:
            self.max_received = max(self.max_received, n)


def client_source(i):
    """Client i's own loopback address (all of 127/8 is local): nginx names it in
    X-Forwarded-For, and the replicas, trusting nginx (--trusted-proxy 127.0.0.1), count each
    client on its own for --max-downloads-per-client (default 4: twenty clients on one
    address would get 429s)."""
    return f"127.0.1.{i + 1}"


def download(port, path, size, request_id, progress=None, attempts=6, source=None):
    """Downloads path through port like a resuming client: after a cut it asks for the rest
    with Range and If-Range (the first answer's ETag). `source`: the local address to connect
    from. Returns (sha256 hex, report dict)."""
    digest = hashlib.sha256()
    received = 0
    etag = None
    report = {"attempts": 0, "resumed": 0, "restarted": 0, "errors": []}
    while report["attempts"] < attempts:
        report["attempts"] += 1
        headers = {"X-Request-Id": f"{request_id}-{report['attempts']}"}
        if received:
            headers["Range"] = f"bytes={received}-"
            if etag:
                headers["If-Range"] = etag
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60,
                                          source_address=(source, 0) if source else None)
        try:
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            if r.status == 501:
                raise DownloadsPending(r.read().decode(errors="replace")[:200])
            if r.status == 200:
                if received:
                    report["restarted"] += 1  # If-Range did not match: start over
                digest, received = hashlib.sha256(), 0
                etag = r.getheader("ETag")
                check(int(r.getheader("Content-Length", -1)) == size,
                      f"{path}: Content-Length {r.getheader('Content-Length')}, expected {size}")
            elif r.status == 206:
                crange = r.getheader("Content-Range", "")
                check(crange.startswith(f"bytes {received}-"),
                      f"{path}: asked bytes={received}-, got Content-Range {crange!r}")
                report["resumed"] += 1
            else:
                raise Failure(f"{path}: HTTP {r.status}: {r.read()[:300]!r}")
            while True:
                chunk = r.read(256 * 1024)
                if not chunk:
                    break
                digest.update(chunk)
                received += len(chunk)
                if progress:
                    progress.update(received)
        except (OSError, http.client.HTTPException) as e:
            report["errors"].append(f"{type(e).__name__}: {e}")
        finally:
            conn.close()
        if received == size:
            return digest.hexdigest(), report
        check(received < size, f"{path}: received {received} bytes, more than {size}")
    raise Failure(f"{path}: {received} of {size} bytes after {attempts} attempts: {report}")


def parallel(fn, n=CLIENTS, timeout=240):
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(fn, i) for i in range(n)]
        done, not_done = concurrent.futures.wait(futures, timeout=timeout)
        check(not not_done, f"{len(not_done)} client(s) still running after {timeout} s")
        results = []
        for f in futures:
            e = f.exception()
            if isinstance(e, DownloadsPending):
                raise e
            if e:
                raise e
            results.append(f.result())
        return results


# ---------------------------------------------------------------------------------------
# the test


class Setup:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.processes = []

    def start(self):
        a, tmp = self.args, self.tmp
        self.sim = self.add(Process("fus-sim", [a.fus_sim, "--listen", "127.0.0.1:0", "--port-file",
                                                os.path.join(tmp, "sim.port")], tmp,
                                    os.path.join(tmp, "sim.port")).start())
        sim_url = f"http://127.0.0.1:{self.sim.port}/"
        self.replicas = []
        for i in (1, 2):
            port_file = os.path.join(tmp, f"replica{i}.port")
            argv = [a.fusproxy, "--listen", "127.0.0.1:0", "--port-file", port_file,
                    "--cache-dir", os.path.join(tmp, f"cache{i}"), "--fus-url", sim_url,
                    "--cloud-url", sim_url, "--fota-url", sim_url, "--connections", "2",
                    "--log-format", "json", "--trusted-proxy", "127.0.0.1"]
            self.replicas.append(self.add(Process(f"replica{i}", argv, tmp, port_file).start()))
        for r in self.replicas:
            wait_until(lambda: self.status(r.port, "/readyz") == 200, f"{r.name} /readyz")

        self.nginx_port = free_port()
        with open(a.nginx_conf) as f:
            site = rewrite_nginx_conf(f.read(), self.nginx_port, [r.port for r in self.replicas])
        site_path = os.path.join(tmp, "fusproxy.conf")
        with open(site_path, "w") as f:
            f.write(site)
        main_path = os.path.join(tmp, "nginx.conf")
        with open(main_path, "w") as f:
            f.write(nginx_main_conf(tmp, site_path))
        test = subprocess.run([a.nginx, "-t", "-p", tmp, "-c", main_path], capture_output=True,
                              text=True)
        check(test.returncode == 0, f"nginx -t on the shipped config: {test.stderr}")
        self.nginx = self.add(Process("nginx", [a.nginx, "-p", tmp, "-c", main_path, "-g",
                                                "daemon off;"], tmp).start())
        wait_until(lambda: self.status(self.nginx_port, "/healthz") == 200, "nginx -> /healthz")
        log(f"fus-sim :{self.sim.port}, replicas :{self.replicas[0].port} "
            f":{self.replicas[1].port}, nginx :{self.nginx_port}")

    def add(self, p):
        self.processes.append(p)
        return p

    def stop(self):
        for p in reversed(self.processes):
            p.stop(signal.SIGQUIT if p.name == "nginx" else signal.SIGTERM)

    def status(self, port, path):
        try:
            return http_get(port, path, timeout=2)[0]
        except OSError:
            return None

    def sim_json(self, path, method="GET", body=None):
        status, _, data = http_get(self.sim.port, path, method=method, body=body)
        check(status == 200, f"fus-sim {path}: {status} {data[:200]!r}")
        return json.loads(data)

    def access_lines(self, request_ids):
        """(replica, json access line) of each of these request ids a replica logged."""
        for r in self.replicas:
            for line in r.text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("msg") == "access" and entry.get("request_id") in request_ids:
                    yield r, entry

    def replicas_that_logged(self, request_ids):
        """Which replica logged each request id (json access log lines)."""
        seen = {}
        for r, entry in self.access_lines(request_ids):
            seen.setdefault(entry["request_id"], set()).add(r.name)
        return seen

    def owner_of(self, path):
        """The replica nginx sends `path` to: asked once with a request id we can find."""
        rid = f"probe-{time.monotonic_ns()}"
        status, _, body = http_get(self.nginx_port, path, headers={"X-Request-Id": rid})
        check(status == 200, f"{path} through nginx: {status} {body[:300]!r}")
        seen = wait_until(lambda: self.replicas_that_logged({rid}).get(rid), f"{rid} in a log", 5)
        check(len(seen) == 1, f"{path} logged by {seen}")
        name = next(iter(seen))
        return next(r for r in self.replicas if r.name == name)


def phase_metadata(s, model, region):
    path = f"/firmware/{model}/{region}/latest"
    ids = [f"meta-{i}-{time.monotonic_ns()}" for i in range(CLIENTS)]

    def client(i):
        status, _, body = http_get(s.nginx_port, path, headers={"X-Request-Id": ids[i]})
        check(status == 200, f"client {i}: {path} answered {status}: {body[:300]!r}")
        return json.loads(body)

    answers = parallel(client)
    check(all(a == answers[0] for a in answers), f"{path}: the {CLIENTS} answers differ")
    seen = wait_until(lambda: (lambda m: m if len(m) == CLIENTS else None)(s.replicas_that_logged(set(ids))),
                      "every metadata request in a replica's log", 5)
    replicas = set().union(*seen.values())
    check(len(replicas) == 1, f"{path}: served by {sorted(replicas)}, expected one replica")
    log(f"ok: {CLIENTS} clients, {path}: all 200, one answer ({answers[0].get('version_id')}), "
        f"all from {replicas.pop()}")
    return answers[0]


def phase_downloads(s, meta):
    path = f"/firmware/{meta['model']}/{meta['region']}/{meta['version_id']}/download"
    expected = s.sim_json(f"/_sim/builds/{meta['filename']}/sha256")["sha256"]
    s.sim_json("/_sim/reset-stats", method="POST")
    ids = [f"dl-{i}-{time.monotonic_ns()}" for i in range(CLIENTS)]
    t0 = time.monotonic()
    results = parallel(lambda i: download(s.nginx_port, path, meta["plain_size"], ids[i],
                                          source=client_source(i)))
    seconds = time.monotonic() - t0
    for i, (digest, report) in enumerate(results):
        check(digest == expected, f"client {i}: SHA-256 {digest}, fus-sim says {expected}")
    first_ids = {f"{rid}-1" for rid in ids}
    seen = s.replicas_that_logged(first_ids)
    replicas = set().union(*seen.values()) if seen else set()
    check(len(replicas) == 1, f"{path}: served by {sorted(replicas)}, expected one replica")
    clients = {e["request_id"]: e.get("client") for _, e in s.access_lines(first_ids)}
    for i, rid in enumerate(ids):
        check(clients.get(f"{rid}-1") == client_source(i),
              f"client {i}: the replica logged client {clients.get(f'{rid}-1')!r}, expected "
              f"{client_source(i)} (from nginx's X-Forwarded-For)")
    stats = s.sim_json("/_sim/stats")["builds"].get(meta["filename"], {})
    served = stats.get("bytes_served", 0)
    check(served <= 1.05 * meta["size"],
          f"fus-sim served {served} bytes of {meta['filename']} for {CLIENTS} clients: "
          f"more than 1.05 x its {meta['size']} bytes")
    log(f"ok: {CLIENTS} clients downloaded {path} ({meta['plain_size']} bytes) through nginx in "
        f"{seconds:.2f} s, SHA-256 right; one replica; upstream served {served} bytes "
        f"({served / meta['size']:.3f} x the build)")


def phase_failover_downloads(s, meta):
    path = f"/firmware/{meta['model']}/{meta['region']}/{meta['version_id']}/download"
    expected = s.sim_json(f"/_sim/builds/{meta['filename']}/sha256")["sha256"]
    owner = s.owner_of(f"/firmware/{meta['model']}/{meta['region']}/{meta['version_id']}")
    survivor = next(r for r in s.replicas if r is not owner)
    # Slow the upstream down so that the downloads are surely in flight when the owner dies.
    size_mib = meta["size"] / 1048576
    s.sim_json("/_sim/throttle", method="POST", body=json.dumps({"bps": int(meta["size"] / 6)}))
    progress = Progress()
    ids = [f"fo-{i}-{time.monotonic_ns()}" for i in range(CLIENTS)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as killer_pool:
        def kill_when_in_flight():
            wait_until(lambda: progress.max_received >= meta["plain_size"] // 8,
                       "the downloads to be under way", 60)
            owner.kill()
            return progress.max_received
        killed_at = killer_pool.submit(kill_when_in_flight)
        results = parallel(lambda i: download(s.nginx_port, path, meta["plain_size"], ids[i], progress,
                                              source=client_source(i)))
        killed_at = killed_at.result()
    s.sim_json("/_sim/throttle", method="POST", body=json.dumps({"bps": 0}))
    for i, (digest, report) in enumerate(results):
        check(digest == expected, f"client {i}: SHA-256 {digest}, fus-sim says {expected}")
    cut = [r for _, r in results if r["attempts"] > 1]
    check(cut, "no client was cut: the replica died after the downloads ended")
    restarted = sum(r["restarted"] for _, r in results)
    check(restarted == 0, f"{restarted} resumed download(s) got 200 instead of 206: the other "
          "replica's ETag differs, so If-Range cannot resume across replicas")
    log(f"ok: {owner.name} killed after {killed_at} bytes had reached a client "
        f"({size_mib:.0f} MiB build); all {CLIENTS} clients finished with the right SHA-256, "
        f"{len(cut)} of them resumed with Range on {survivor.name}")


def phase_failover_metadata(s, model, region):
    path = f"/firmware/{model}/{region}/latest"
    owner = s.owner_of(path)
    owner.kill()
    ids = [f"fom-{i}-{time.monotonic_ns()}" for i in range(CLIENTS)]

    def client(i):
        status, _, body = http_get(s.nginx_port, path, headers={"X-Request-Id": ids[i]})
        check(status == 200, f"client {i} after the kill: {path} answered {status}: {body[:300]!r}")
        return json.loads(body)

    answers = parallel(client)
    check(all(a == answers[0] for a in answers), f"{path}: the answers differ after the kill")
    log(f"ok: {owner.name} killed; {CLIENTS} clients still got {path} (200) through nginx")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fusproxy", required=True)
    ap.add_argument("--fus-sim", required=True)
    ap.add_argument("--nginx-conf", required=True, help="deploy/nginx/fusproxy.conf")
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if not os.access(args.nginx, os.X_OK):
        print(f"scaleout: SKIPPED: no nginx at {args.nginx} (scripts/setup.sh installs nginx-light)")
        return SKIP

    tmp = tempfile.mkdtemp(prefix="fusproxy-scaleout-")
    os.chmod(tmp, 0o755)  # nginx's workers (www-data) read nothing here, but its temp dirs live here
    s = Setup(args, tmp)
    pending = []
    try:
        s.start()
        phase_metadata(s, "SM-G990B", "BTU")
        big = phase_metadata(s, "SM-S931U1", "XAA")
        try:
            phase_downloads(s, phase_metadata(s, "SM-A207F", "SER"))
            phase_failover_downloads(s, big)
        except DownloadsPending as e:
            pending.append(f"downloads through nginx (20 clients, SHA-256, upstream once) and "
                           f"fail-over mid-download: /download answers 501 ({e})")
            phase_failover_metadata(s, "SM-S931U1", "XAA")
        for p in pending:
            log(f"PENDING: {p}")
        log("passed")
        return 0
    except Failure as e:
        log(f"FAILED: {e}")
        for p in s.processes:
            log(f"--- {p.name} log (tail) ---\n{p.tail()}")
        err = os.path.join(tmp, "nginx-error.log")
        if os.path.exists(err):
            with open(err) as f:
                log("--- nginx error log (tail) ---\n" + "".join(f.readlines()[-15:]))
        return 1
    finally:
        s.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
