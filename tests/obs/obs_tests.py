#!/usr/bin/env python3
"""fusproxy observability, security and operations, end to end: fus-sim and fusproxy as
processes on loopback (tests/e2e/harness.py), real curl, promtool and headless Chromium.

usage: obs_tests.py --fusproxy PATH --fus-sim PATH --source-dir DIR --artifacts DIR CASE
Exit 77 (CTest SKIP_RETURN_CODE) when a tool the case needs is missing.
"""
import argparse
import http.server
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
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from harness import (Failure, Paths, Proxy, Sim, check, curl, curl_parallel,  # noqa: E402
                     wait_until)

SKIP = 77
CASES = {}
ARGS = None


class Skip(Exception):
    pass


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def need(tool):
    path = shutil.which(tool)
    if not path:
        raise Skip(f"{tool} is not installed")
    return path


META = "/firmware/SM-A207F/SER/latest"


def some_traffic(proxy):
    for path in (META, "/firmware/SM-A207F/SER", "/firmware/SM-XXXX/SER", "/healthz", "/readyz",
                 "/nope", "/api/status", "/"):
        curl(proxy.url(path))


def sim_build(sim, model, region):
    """The newest hosted catalogue build of model/region."""
    for b in sim.builds():
        if b["model"] == model and b["region"] == region and b["hosted"]:
            return b
    raise Failure(f"no {model}/{region} in the simulator's catalogue")


def download_path(b):
    return f"/firmware/{b['model']}/{b['region']}/{b['served_version'].replace('/', '_')}/download"


def download(proxy, b, *args):
    """Downloads a build through the proxy: the number of bytes received (checked a zip)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "fw.zip")
        r = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", *args,
                            proxy.url(download_path(b))], capture_output=True, text=True)
        check(r.stdout == "200", f"download: HTTP {r.stdout} {r.stderr}")
        import zipfile
        with zipfile.ZipFile(out) as z:
            check(z.testzip() is None, "the downloaded zip's members check out")
        return os.path.getsize(out)


def throttled_sim(paths, bps):
    sim = Sim(paths)
    sim.argv += ["--throttle-bps", str(bps)]
    return sim


def start_download(proxy, b, interface=None, out="/dev/null"):
    argv = ["curl", "-sS", "-o", out, "-w", "%{http_code}", "--max-time", "60"]
    if interface:
        argv += ["--interface", interface]
    return subprocess.Popen(argv + [proxy.url(download_path(b))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def active_downloads(proxy):
    return curl(proxy.url("/api/status")).json()["downloads"]


def metric_values(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def promtool_check(text):
    promtool = need("promtool")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True)
    check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
          f"promtool check metrics: rc {r.returncode}\n{r.stdout}{r.stderr}")


# ---- metrics ----

@case
def metrics_promtool(paths):
    need("promtool")
    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        some_traffic(proxy)
        build = sim_build(sim, "SM-G990B", "BTU")
        got = download(proxy, build)
        check(got == build["plain_size"], f"downloaded {got} of {build['plain_size']} bytes")
        # The same build again: served from the verified file in the cache.
        got = download(proxy, build)
        check(got == build["plain_size"], f"cached: downloaded {got} of {build['plain_size']}")
        r = curl(proxy.url("/metrics"))
        check(r.status == 200, f"/metrics: {r!r}")
        check(r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
              f"content type {r.headers.get('content-type')}")
        promtool_check(r.body)
        v = metric_values(r.body)
        check(v.get('fusproxy_http_requests_total{route="metadata",status="200"}') == 1,
              "metadata 200 counted once")
        check(v.get('fusproxy_http_requests_total{route="-",status="404"}', 0) >= 1,
              "an unknown path counted under route -")
        check(v.get("fusproxy_response_body_bytes_total", 0) >= build["plain_size"],
              "bytes served counted")
        check(v.get('fusproxy_http_requests_total{route="download",status="200"}') == 2,
              "the downloads counted")
        check('fusproxy_http_request_duration_seconds_bucket{route="metadata",le="+Inf"}' in v,
              "request duration histogram")
        for family in ("fusproxy_upstream_requests_total", "fusproxy_upstream_bytes_total",
                       "fusproxy_upstream_request_duration_seconds",
                       "fusproxy_upstream_time_to_first_byte_seconds",
                       "fusproxy_upstream_retries_total", "fusproxy_cache_hits_total",
                       "fusproxy_cache_misses_total", "fusproxy_cache_evictions_total",
                       "fusproxy_cache_size_bytes", "fusproxy_downloads_active",
                       "fusproxy_resolver_upstream_sessions_total",
                       "fusproxy_fetch_jobs_opened_total"):
            check(f"# TYPE {family} " in r.body, f"/metrics has no {family}")
        # The upstream and cache families record real figures (one cold, one cached download).
        check(v.get('fusproxy_upstream_requests_total{kind="download",outcome="ok"}', 0) > 0,
              "upstream download requests counted")
        check(v.get("fusproxy_upstream_bytes_total", 0) >= build["encrypted_size"],
              f"upstream bytes {v.get('fusproxy_upstream_bytes_total')} >= the encrypted size "
              f"{build['encrypted_size']}")
        check(v.get("fusproxy_cache_misses_total") == 1,
              f"one cache miss (the cold download): {v.get('fusproxy_cache_misses_total')}")
        check(v.get("fusproxy_cache_hits_total", 0) >= 1,
              f"a cache hit (the second download): {v.get('fusproxy_cache_hits_total')}")
        check(v.get("fusproxy_cache_size_bytes") == build["plain_size"],
              f"cache size {v.get('fusproxy_cache_size_bytes')} == {build['plain_size']}")
        check(v.get("fusproxy_cache_builds") == 1, f"builds {v.get('fusproxy_cache_builds')}")
        check(v.get('fusproxy_upstream_time_to_first_byte_seconds_count{kind="download"}', 0) > 0,
              "time to first byte observed for the ranged downloads")
        check(v.get('fusproxy_upstream_request_duration_seconds_count{kind="download"}', 0) > 0,
              "upstream download latency observed")


# ---- status page ----

def chromium(url, workdir, screenshot=None, budget_ms=3000):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise Skip("chromium is not installed")
    args = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={workdir}",
            "--window-size=1200,900", f"--virtual-time-budget={budget_ms}"]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    r = subprocess.run(args + [url], capture_output=True, text=True, timeout=90)
    check(r.returncode == 0, f"chromium rc {r.returncode}: {r.stderr[-2000:]}")
    return r.stdout


@case
def status_page_browser(paths):
    with tempfile.TemporaryDirectory() as profile, Sim(paths) as sim, \
            Proxy(paths, sim) as proxy:
        curl(proxy.url(META))  # one known build for the builds table
        page = proxy.url("/#SM-A207F/SER")
        dom = chromium(page, profile)
        check('id="lookup"' in dom and 'id="model"' in dom and 'id="region"' in dom,
              "the lookup form is there")
        check("serving" in dom and "version 0.1.0" in dom,
              f"the service line was rendered from /api/status: {dom[:3000]}")
        check("A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2" in dom,
              "the lookup (from #SM-A207F/SER) listed the versions")
        check('href="/firmware/SM-A207F/SER/A207FXXU2CUI2_A207FOXM2CUI2_A207FXXU2CUI2_'
              'A207FXXU2CUI2/download"' in dom, "the lookup links to the download")
        check("upstream sessions" in dom, "the upstream counters are shown")
        status = curl(proxy.url("/api/status")).json()
        for key in ("service", "http", "upstream", "builds", "downloads"):
            check(key in status, f"/api/status has {key}")
        check(status["service"]["config"]["auth"] is False, "config summary")
        os.makedirs(ARGS.artifacts, exist_ok=True)
        shot = os.path.join(ARGS.artifacts, "status-page-lookup.png")
        if os.path.exists(shot):
            os.unlink(shot)
        chromium(page, profile, screenshot=shot)
        check(os.path.getsize(shot) > 10_000, "a screenshot was written")
        print(f"screenshot: {shot}")


@case
def status_page_token(paths):
    """With --token, HTTP Basic with the token as password (a browser's own prompt) is accepted
    and challenged for; cross-site management requests authorised so are refused (CSRF)."""
    token = "s3cret-token"
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--token", token]) as proxy:
        r = curl(proxy.url("/"))
        check(r.status == 401 and "basic" in r.headers.get("www-authenticate", "").lower(),
              f"a Basic challenge: {r.headers}")
        check(curl(proxy.url("/api/status"), "-u", "anyone:" + token).status == 200, "Basic")
        check(curl(proxy.url("/api/status"), "-u", "anyone:wrong").status == 401, "wrong password")
        r = curl(proxy.url("/api/mirror"), "-u", "x:" + token, "-H", "Origin: http://evil.example",
                 "--data", '{"model":"SM-A207F","region":"SER"}')
        check(r.status == 403 and r.error_code() == "forbidden", f"cross-site POST: {r!r}")
        r = curl(proxy.url("/api/mirror"), "-u", "x:" + token,
                 "-H", f"Origin: http://127.0.0.1:{proxy.port}",
                 "--data", '{"model":"SM-A207F","region":"SER"}')
        check(r.status == 200, f"same-origin POST: {r!r}")
        # Not yet shown: headless chromium with http://user:TOKEN@host/ did not render the
        # page's /api/status poll (issue 15, open); the checks above are curl's.


@case
def status_page_download(paths):
    with tempfile.TemporaryDirectory() as profile, throttled_sim(paths, 1 << 20) as sim, \
            Proxy(paths, sim, extra=["--connections", "2"]) as proxy:
        b = sim_build(sim, "SM-A207F", "SER")
        client = start_download(proxy, b)
        try:
            wait_until(lambda: any(d["bytes_done"] > 0 for d in active_downloads(proxy)),
                       "a download in progress", timeout=20)
            d = active_downloads(proxy)[0]
            check(d["model"] == "SM-A207F" and d["bytes_total"] == b["encrypted_size"] and
                  d["clients"] == 1 and d["bytes_done"] < d["bytes_total"],
                  f"/api/status downloads entry: {d}")
            dom = chromium(proxy.url("/"), profile)
            row = re.search(r"SM-A207F SER A207FXXU2CUI2[^<]*</td>.*?class=\"bar\".*?"
                            r"\(([0-9.]+)%\)", dom, re.S)
            check(row, f"the page shows the download with its progress: {dom[:4000]}")
            pct = float(row.group(1))
            check(0 < pct < 100, f"in progress: {pct}%")
            os.makedirs(ARGS.artifacts, exist_ok=True)
            shot = os.path.join(ARGS.artifacts, "status-page.png")
            if os.path.exists(shot):
                os.unlink(shot)
            chromium(proxy.url("/"), profile, screenshot=shot)
            check(os.path.getsize(shot) > 10_000, "a screenshot was written")
            print(f"page showed {pct}%; screenshot: {shot}")
        finally:
            client.kill()
            client.wait()


# ---- security and abuse limits ----

ROUTES = ["/", "/api/status", "/metrics", "/firmware/SM-A207F/SER", META,
          "/firmware/SM-A207F/SER/latest/files", "/firmware/SM-A207F/SER/latest/download",
          "/firmware/SM-A207F/SER/latest/files/x.tar", "/no/such/route"]


@case
def token_every_route(paths):
    token = "s3cret-Token-123"
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--token", token]) as proxy:
        for path in ROUTES:
            r = curl(proxy.url(path))
            check(r.status == 401 and r.error_code() == "unauthorized", f"{path}: {r!r}")
            check("bearer" in r.headers.get("www-authenticate", "").lower(), f"{path}: challenge")
            wrong = curl(proxy.url(path), "-H", "Authorization: Bearer " + token + "x")
            check(wrong.status == 401, f"{path} with a wrong token: {wrong!r}")
            head = curl(proxy.url(path), "-I")
            check(head.status == 401, f"HEAD {path}: {head!r}")
        for path in ("/healthz", "/readyz"):
            check(curl(proxy.url(path)).status == 200, f"{path} stays open")
        ok = curl(proxy.url(META), "-H", "Authorization: Bearer " + token)
        check(ok.status == 200, f"with the token: {ok!r}")
        check(curl(proxy.url("/metrics"), "-H", "authorization: bearer " + token).status == 200,
              "the scheme is case-insensitive")
        with open(proxy.log_path, errors="replace") as f:
            log = f.read()
        check(token not in log, "the token never appears in the log")
        check("token=***" in log, "the start-up line shows the token masked")


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out",
                        cert], capture_output=True, text=True)
    check(r.returncode == 0, f"openssl req: {r.stderr}")
    return cert, key


@case
def tls_same_port(paths):
    need("openssl")
    with tempfile.TemporaryDirectory() as d, Sim(paths) as sim:
        cert, key = make_cert(d)
        with Proxy(paths, sim, extra=["--tls-cert", cert, "--tls-key", key]) as proxy:
            https = f"https://127.0.0.1:{proxy.port}"
            r = curl(https + META, "--cacert", cert)
            check(r.status == 200 and r.json()["model"] == "SM-A207F", f"HTTPS metadata: {r!r}")
            r = curl(https + "/healthz", "--cacert", cert, "--http1.1")
            check(r.status == 200, f"HTTPS healthz: {r!r}")
            r = curl(proxy.url("/healthz"))
            check(r.status == 200, f"plain HTTP on the same port: {r!r}")
            bad = curl(https + "/healthz")  # no --cacert: the self-signed cert is refused
            check(bad.status == 0, f"curl without the CA must refuse: {bad!r}")
            # keep-alive over TLS: two requests on one connection
            out = subprocess.run(["curl", "-sS", "--cacert", cert, "-o", "/dev/null", "-o",
                                  "/dev/null", "-w", "%{http_code} %{num_connects}\n",
                                  https + "/healthz", https + "/readyz"],
                                 capture_output=True, text=True)
            check(out.stdout.split() == ["200", "1", "200", "0"],
                  f"two requests on one TLS connection: {out.stdout!r} {out.stderr}")
            v = metric_values(curl(https + "/metrics", "--cacert", cert).body)
            check(v["fusproxy_tls_connections_total"] >= 3, f"TLS connections counted: {v}")
            check(v["fusproxy_tls_handshake_failures_total"] >= 1, "failed handshake counted")
        # a certificate that does not load stops start-up with a message naming the flag
        p = Proxy(paths, sim, extra=["--tls-cert", os.path.join(d, "missing.pem"),
                                     "--tls-key", key])
        try:
            p.start(timeout=10)
            raise Failure("started with a missing certificate")
        except Failure as e:
            check("--tls-cert" in str(e), f"the error names --tls-cert: {e}")
        finally:
            p.stop()
            shutil.rmtree(p.cache_dir, ignore_errors=True)


@case
def rate_limit_per_ip(paths):
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--rate-limit", "50"]) as proxy:
        url = proxy.url("/api/status")  # health checks are not limited
        started = time.monotonic()
        statuses = curl_parallel([url] * 500, parallel_max=50)
        elapsed = time.monotonic() - started
        limited = statuses.count(429)
        served = statuses.count(200)
        print(f"500 requests in {elapsed:.2f}s: {served} x 200, {limited} x 429")
        check(len(statuses) == 500, f"every request answered: {len(statuses)}")
        check(set(statuses) <= {200, 429}, f"only 200/429: {set(statuses)}")
        # burst 50 plus 50/s while the burst lasts
        check(served <= 50 + 50 * (elapsed + 0.5), f"at most the rate got through: {served}")
        check(limited >= 500 - (50 + 50 * (elapsed + 0.5)), f"the rest got 429: {limited}")
        # A 429 says when to come back: 100 requests on one connection, headers dumped.
        with tempfile.TemporaryDirectory() as d:
            dump = os.path.join(d, "headers")
            subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", dump] + [url] * 100,
                           capture_output=True)
            heads = open(dump, errors="replace", newline="").read().split("\r\n\r\n")
        limited_heads = [h for h in heads if h.startswith("HTTP/1.1 429")]
        check(limited_heads, "429s among 100 requests on one connection")
        retry = re.search(r"(?im)^retry-after: *(\d+)", limited_heads[0])
        check(retry and int(retry.group(1)) >= 1, f"Retry-After: {limited_heads[0]}")
        other = curl(url, "--interface", "127.0.0.2")
        check(other.status == 200, f"another client address is served: {other!r}")
        check(curl(proxy.url("/healthz")).status == 200, "health checks are never limited")
        v = metric_values(curl(proxy.url("/metrics"), "--interface", "127.0.0.3").body)
        check(v["fusproxy_rate_limited_total"] >= limited, "429s counted")


@case
def download_caps(paths):
    with throttled_sim(paths, 256 << 10) as sim, Proxy(paths, sim, extra=[
            "--connections", "2", "--max-downloads-per-client", "1",
            "--max-downloads", "2", "--queue-timeout", "0"]) as proxy:  # 0: refuse at once
        b = sim_build(sim, "SM-A207F", "SER")
        first = start_download(proxy, b)
        others = []
        try:
            wait_until(lambda: metric_values(curl(proxy.url("/metrics")).body)
                       .get("fusproxy_downloads_active", 0) >= 1, "the first download streaming")
            r = curl(proxy.url(download_path(b)), "--max-time", "5")
            check(r.status == 429 and r.error_code() == "rate_limited",
                  f"a second download from the same client: {r!r}")
            check(int(r.headers.get("retry-after", "0")) >= 1, f"Retry-After: {r.headers}")
            head = curl(proxy.url(download_path(b)), "-I")
            check(head.status == 200, f"HEAD takes no slot: {head!r}")
            others.append(start_download(proxy, b, interface="127.0.0.2"))
            wait_until(lambda: metric_values(curl(proxy.url("/metrics")).body)
                       .get("fusproxy_downloads_active", 0) >= 2, "a second client's download")
            r = curl(proxy.url(download_path(b)), "--interface", "127.0.0.3", "--max-time", "5")
            check(r.status == 429 and r.headers.get("retry-after"),
                  f"a third client above the total cap: {r!r}")
            v = metric_values(curl(proxy.url("/metrics")).body)
            check(v["fusproxy_downloads_refused_total"] == 2, f"refusals counted: {v}")
        finally:
            for p in [first] + others:
                p.kill()
                p.wait()


@case
def size_limits(paths):
    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        r = curl(proxy.url("/healthz"), "-H", "X-Big: " + "a" * 20000)
        check(r.status == 431, f"a 20 KB header: {r!r}")
        r = curl(proxy.url("/firmware/" + "A" * 9000))
        check(r.status == 414, f"a 9 KB URL: {r!r}")
        with tempfile.NamedTemporaryFile() as body:
            body.write(b"x" * 100_000)
            body.flush()
            r = curl(proxy.url("/api/status"), "--data-binary", "@" + body.name)
            check(r.status == 413, f"a 100 KB body: {r!r}")
        check(curl(proxy.url("/healthz")).status == 200, "still serving")


@case
def slowloris(paths):
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--header-timeout", "2"]) as proxy:
        slow = socket.create_connection(("127.0.0.1", proxy.port))
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        started = time.monotonic()
        cut_at = None
        served = []
        for byte in request:
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                cut_at = time.monotonic() - started
                break
            t0 = time.monotonic()
            r = curl(proxy.url("/healthz"), timeout=5)
            served.append(time.monotonic() - t0)
            check(r.status == 200, f"another client while the slow one trickles: {r!r}")
            slow.settimeout(1.0)
            try:
                if slow.recv(1) == b"":
                    cut_at = time.monotonic() - started
                    break
            except socket.timeout:
                pass
            except OSError:
                cut_at = time.monotonic() - started
                break
            if time.monotonic() - started > 10:
                break
        slow.close()
        print(f"slow client cut after {cut_at}s; others served in max "
              f"{max(served) * 1000:.0f} ms over {len(served)} requests")
        check(cut_at is not None and cut_at < 4.5, f"cut by the 2 s header timeout: {cut_at}")
        check(max(served) < 0.5, f"others not delayed: {max(served):.3f}s")
        v = metric_values(curl(proxy.url("/metrics")).body)
        check(v["fusproxy_header_timeouts_total"] >= 1, "header timeout counted")


# ---- logs ----

class RecordingUpstream:
    """A stand-in upstream that records request headers and answers 500."""

    def __init__(self):
        self.headers = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                outer.headers.append(dict(self.headers))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = answer

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/"


def read_json_lines(path):
    with open(path, errors="replace") as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    parsed = []
    for l in lines:
        try:
            parsed.append(json.loads(l))
        except ValueError:
            raise Failure(f"a log line is not JSON: {l!r}")
        check(isinstance(parsed[-1], dict) and "ts" in parsed[-1] and "level" in parsed[-1],
              f"a log line lacks ts/level: {l!r}")
    return parsed


@case
def json_logs(paths):
    with tempfile.TemporaryDirectory() as d, RecordingUpstream() as upstream:
        log_file = os.path.join(d, "fusproxy.log")
        with Sim(paths) as sim, Proxy(paths, sim, extra=[
                "--log-format", "json", "--log-file", log_file, "--token", "hunter2hunter2",
                "--legacy-keys", "0123456789abcdef0123456789abcdef:0123456789abcdef"]) as proxy:
            auth = ["-H", "Authorization: Bearer hunter2hunter2"]
            r = curl(proxy.url(META), *auth, "-H", "X-Request-Id: obs-test-1")
            check(r.status == 200 and r.headers.get("x-request-id") == "obs-test-1",
                  f"the request id is echoed: {r!r}")
            r = curl(proxy.url("/firmware/SM-XXXX/SER/latest"), *auth)
            generated = r.headers.get("x-request-id")
            check(generated, "a request id is generated when none is sent")
        lines = read_json_lines(log_file)
        text = open(log_file).read()
        check("hunter2hunter2" not in text and "0123456789abcdef" not in text,
              "secrets never reach the log")
        start = [l for l in lines if "fusproxy starting" in l.get("msg", "")]
        check(start and "token=***" in start[0]["msg"] and "***custom***" in start[0]["msg"],
              f"start-up logs the config, masked: {start}")
        access = [l for l in lines if l.get("msg") == "access"]
        check(any(l.get("request_id") == "obs-test-1" and l.get("status") == 200 for l in access),
              f"the access line carries the request id: {access}")
        check(any(l.get("request_id") == generated for l in access), "generated id logged")
        # The request id also goes upstream, and upstream failures are logged with it.
        with Proxy(paths, None, extra=["--fus-url", upstream.base_url, "--cloud-url",
                                       upstream.base_url, "--fota-url", upstream.base_url,
                                       "--log-format", "json"]) as proxy:
            r = curl(proxy.url(META), "-H", "X-Request-Id: obs-upstream-7")
            check(r.status in (502, 503), f"a failing upstream: {r!r}")
            lines = read_json_lines(proxy.log_path)
        sent = [h.get("X-Request-Id") for h in upstream.headers]
        check(sent and all(s == "obs-upstream-7" for s in sent),
              f"X-Request-Id sent upstream on every request: {sent}")
        check(any(l.get("request_id") == "obs-upstream-7" and l.get("msg") != "access"
                  for l in lines), f"the resolver's lines carry the request id: {lines}")


@case
def log_reopen_on_sighup(paths):
    with tempfile.TemporaryDirectory() as d:
        log_file = os.path.join(d, "fusproxy.log")
        with Sim(paths) as sim, Proxy(paths, sim, extra=["--log-file", log_file]) as proxy:
            curl(proxy.url("/healthz"), "-H", "X-Request-Id: before-rotation")
            wait_until(lambda: "before-rotation" in open(log_file).read(), "first access line")
            os.rename(log_file, log_file + ".1")
            proxy.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: os.path.exists(log_file), "a new log file after SIGHUP")
            curl(proxy.url("/healthz"), "-H", "X-Request-Id: after-rotation")
            wait_until(lambda: "after-rotation" in open(log_file).read(), "new lines in new file")
            check(proxy.proc.poll() is None, "SIGHUP does not stop the service")
        old = open(log_file + ".1").read()
        check("before-rotation" in old and "after-rotation" not in old, "old file kept old lines")


# ---- graceful operations ----

@case
def graceful_shutdown(paths):
    with Sim(paths, faults="slow-first-byte=2s@inform") as sim, \
            Proxy(paths, sim, extra=["--shutdown-grace", "10"]) as proxy:
        out = tempfile.NamedTemporaryFile(delete=False)
        slow = subprocess.Popen(["curl", "-sS", "-o", out.name, "-w", "%{http_code}",
                                 proxy.url(META)], stdout=subprocess.PIPE, text=True)
        wait_until(lambda: metric_values(curl(proxy.url("/metrics")).body)
                   .get("fusproxy_requests_in_flight", 0) >= 2, "the slow request in flight")
        t0 = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: curl(proxy.url("/healthz"), timeout=2).status != 200,
                   "no longer accepting", timeout=5)
        status = slow.communicate(timeout=20)[0]
        check(status == "200", f"the in-flight request finished: {status}")
        check(json.load(open(out.name))["model"] == "SM-A207F", "with its whole answer")
        os.unlink(out.name)
        rc = proxy.proc.wait(timeout=15)
        print(f"exited {rc} {time.monotonic() - t0:.2f}s after SIGTERM")
        check(rc == 0, f"clean exit: {rc}")


@case
def graceful_shutdown_download(paths):
    with tempfile.TemporaryDirectory() as d, throttled_sim(paths, 1 << 20) as sim, \
            Proxy(paths, sim, extra=["--connections", "2", "--shutdown-grace", "30"]) as proxy:
        b = sim_build(sim, "SM-G990B", "BTU")  # 1.5 MB at 2 x 1 MB/s: about a second
        out = os.path.join(d, "fw.zip")
        client = start_download(proxy, b, out=out)
        wait_until(lambda: metric_values(curl(proxy.url("/metrics")).body)
                   .get("fusproxy_downloads_active", 0) >= 1, "the download streaming")
        proxy.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: curl(proxy.url("/healthz"), timeout=2).status != 200,
                   "no longer accepting", timeout=5)
        status = client.communicate(timeout=30)[0]
        check(status == "200", f"the in-flight download finished: {status}")
        check(os.path.getsize(out) == b["plain_size"], "whole")
        import zipfile
        with zipfile.ZipFile(out) as z:
            check(z.testzip() is None, "and correct")
        rc = proxy.proc.wait(timeout=15)
        check(rc == 0, f"clean exit: {rc}")


@case
def shutdown_grace_cuts(paths):
    with Sim(paths, faults="slow-first-byte=8s@inform") as sim, \
            Proxy(paths, sim, extra=["--shutdown-grace", "1"]) as proxy:
        slow = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                 proxy.url(META)], stdout=subprocess.PIPE, text=True,
                                stderr=subprocess.DEVNULL)
        wait_until(lambda: metric_values(curl(proxy.url("/metrics")).body)
                   .get("fusproxy_requests_in_flight", 0) >= 2, "the slow request in flight")
        t0 = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        rc = proxy.proc.wait(timeout=15)
        took = time.monotonic() - t0
        slow.communicate(timeout=10)
        check(rc == 0 and took < 5, f"stopped after the 1 s grace: rc {rc}, {took:.2f}s")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--fusproxy")
    ap.add_argument("--fus-sim")
    ap.add_argument("--source-dir")
    ap.add_argument("--artifacts", default="test-artifacts")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("case", nargs="*")
    ARGS = ap.parse_args()
    if ARGS.list:
        print("\n".join(CASES))
        return 0
    paths = Paths(ARGS.fusproxy, ARGS.fus_sim, ARGS.source_dir)
    rc = 0
    for name in ARGS.case or list(CASES):
        try:
            CASES[name](paths)
            print(f"PASS {name}")
        except Skip as e:
            print(f"SKIP {name}: {e}")
            if len(ARGS.case) == 1:
                return SKIP
        except Exception:
            traceback.print_exc()
            print(f"FAIL {name}")
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
