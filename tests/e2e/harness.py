"""End-to-end harness: fus-sim and fusproxy as real processes on ephemeral loopback ports,
driven with real curl. Python 3 standard library only.

    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        r = curl(proxy.url("/firmware/SM-A207F/SER/latest"))
        check(r.status == 200, ...)

Readiness is polled with a deadline (port files, /readyz); nothing sleeps a fixed time.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


# fusproxy flags for fault tests: quick retries and upstream timeouts, so they take seconds.
FAST = ["--retry-base-ms", "20", "--upstream-timeout", "5"]


def wait_until(fn, what, timeout=10.0, interval=0.02):
    """Polls fn() until it returns something truthy; Failure naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out waiting for {what}")
        time.sleep(interval)


class Paths:
    def __init__(self, fusproxy, fus_sim, source_dir):
        self.fusproxy = fusproxy
        self.fus_sim = fus_sim
        self.source_dir = source_dir

    def source(self, rel):
        return os.path.join(self.source_dir, rel)


class Process:
    """A child process with a port file and a log, killed at exit."""

    def __init__(self, name, argv, workdir):
        self.name = name
        self.workdir = workdir
        self.port_file = os.path.join(workdir, name + ".port")
        self.log_path = os.path.join(workdir, name + ".log")
        self.argv = argv + ["--port-file", self.port_file]
        self.proc = None
        self.port = None

    def start(self, timeout=10.0):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

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

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


class Sim(Process):
    def __init__(self, paths, workdir=None, faults=None, legacy_keys=None, require_imei=False,
                 catalogue=None, port=0, extra=()):
        self._own_dir = workdir is None
        workdir = workdir or tempfile.mkdtemp(prefix="e2e-sim-")
        argv = [paths.fus_sim, "--listen", f"127.0.0.1:{port}"]
        if faults:
            argv += ["--faults", faults]
        if legacy_keys:
            argv += ["--legacy-keys", legacy_keys]
        if require_imei:
            argv.append("--require-imei")
        if catalogue:
            argv += ["--catalogue", catalogue]
        argv += list(extra)
        super().__init__("fus-sim", argv, workdir)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/"

    def get_json(self, path):
        with urllib.request.urlopen(self.url(path), timeout=10) as r:
            return json.loads(r.read())

    def post(self, path, body=b""):
        req = urllib.request.Request(self.url(path), data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def arm(self, spec):
        self.post("/_sim/faults", spec.encode())

    def reset_stats(self):
        self.post("/_sim/reset-stats")

    def stats(self):
        return self.get_json("/_sim/stats")

    def upstream_requests(self):
        """Requests on every route but the control routes."""
        routes = self.stats()["routes"]
        return sum(r["requests"] for name, r in routes.items() if not name.startswith("_sim"))

    def builds(self):
        return self.get_json("/_sim/builds")["builds"]

    def restart(self):
        """Starts again on the same port (after stop())."""
        self.argv[self.argv.index("--listen") + 1] = f"127.0.0.1:{self.port}"
        return self.start()


class Proxy(Process):
    def __init__(self, paths, sim=None, dialect="smart2", extra=(), demo=False):
        self.cache_dir = tempfile.mkdtemp(prefix="e2e-proxy-")
        argv = [paths.fusproxy, "--listen", "127.0.0.1:0", "--cache-dir",
                os.path.join(self.cache_dir, "cache"), "--dialect", dialect]
        if sim is not None:
            argv += ["--fus-url", sim.base_url, "--cloud-url", sim.base_url,
                     "--fota-url", sim.base_url]
        if demo:
            argv.append("--demo")
        argv += list(extra)
        super().__init__("fusproxy", argv, self.cache_dir)

    def __enter__(self):
        self.start()
        wait_until(lambda: curl(self.url("/readyz")).status == 200, "fusproxy /readyz")
        return self

    def __exit__(self, *exc):
        self.stop()
        if exc and exc[0] is not None:
            print(f"--- fusproxy log tail ---\n{self.tail()}")
        shutil.rmtree(self.cache_dir, ignore_errors=True)


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> last value
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise Failure(f"not JSON (HTTP {self.status}): {self.body[:300]!r}")

    def error_code(self):
        return self.json().get("error", {}).get("code")

    def __repr__(self):
        return f"HTTP {self.status} {self.body[:400]!r}"


def curl(url, *args, timeout=30):
    """One request with the curl binary: status, headers and body."""
    with tempfile.TemporaryDirectory() as d:
        head, body = os.path.join(d, "h"), os.path.join(d, "b")
        cmd = ["curl", "-sS", "--globoff", "--max-time", str(timeout), "-D", head, "-o", body,
               "-w", "%{http_code}", *args, url]
        out = subprocess.run(cmd, capture_output=True, text=True)
        status = int(out.stdout.strip() or 0)
        headers = {}
        if os.path.exists(head):
            with open(head, errors="replace") as f:
                for line in f:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        k, v = k.strip().lower(), v.strip()
                        # A repeated field (WWW-Authenticate, Set-Cookie) keeps every line.
                        headers[k] = headers[k] + ", " + v if k in headers else v
        data = b""
        if os.path.exists(body):
            with open(body, "rb") as f:
                data = f.read()
        return Reply(status, headers, data.decode("utf-8", errors="replace"))


def curl_parallel(urls, parallel_max=200, timeout=60):
    """Every URL at once (curl --parallel): the list of HTTP statuses."""
    with tempfile.TemporaryDirectory() as d:
        config = os.path.join(d, "urls")
        with open(config, "w") as f:
            for u in urls:
                f.write(f'url = "{u}"\noutput = "/dev/null"\n')
        out = subprocess.run(["curl", "-sS", "--parallel", "--parallel-immediate",
                              "--parallel-max", str(parallel_max), "--max-time", str(timeout),
                              "-w", "%{http_code}\n", "-K", config],
                             capture_output=True, text=True)
        return [int(x) for x in out.stdout.split()]


def run_cases(cases):
    """The command line of an e2e script: --fusproxy, --fus-sim, --source-dir, --list and the
    case names (default: all); runs them in order and reports each. Exit status 1 if any
    failed."""
    import argparse
    import traceback
    ap = argparse.ArgumentParser()
    ap.add_argument("--fusproxy")
    ap.add_argument("--fus-sim")
    ap.add_argument("--source-dir", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("case", nargs="*")
    a = ap.parse_args()
    if a.list:
        print("\n".join(cases))
        return 0
    paths = Paths(a.fusproxy, a.fus_sim, os.path.abspath(a.source_dir))
    failed = 0
    for name in a.case or list(cases):
        start = time.monotonic()
        try:
            cases[name](paths)
            print(f"ok   {name} ({time.monotonic() - start:.1f} s)")
        except Exception as e:  # noqa: BLE001 (report every failure the same way)
            failed += 1
            print(f"FAIL {name}: {e}")
            if not isinstance(e, Failure):
                traceback.print_exc()
    return 1 if failed else 0
