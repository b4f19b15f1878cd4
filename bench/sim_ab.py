#!/usr/bin/env python3
"""A/B of two fus-sim binaries in the same run (alternating, so machine load hits both):

  1. time to ready: spawn -> port file written;
  2. registration: POST /_sim/builds of a new 1 MiB build;
  3. first GET /_sim/builds (what every e2e test's harness does: it makes every image);
  4. first BinaryInform of the 20 GB build (nonce + inform + InitForMass: makes its image);
  5. one curl of the first BENCH_BYTES (2 GiB) of the 20 GB build's encrypted file;
  6. VmHWM of fus-sim after all of the above.

Prints each run, the medians and the ratio new/old. Timing only: nothing here fails on a
figure (the machine is shared).

usage: bench/sim_ab.py NEW_FUS_SIM OLD_FUS_SIM      (RUNS=5, BENCH_BYTES=2147483648)
  e.g. the old one from main: git archive main | tar -x -C /tmp/main &&
       cmake -S /tmp/main -B /tmp/main/build -DCMAKE_BUILD_TYPE=Release &&
       cmake --build /tmp/main/build --target fus-sim
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

here = os.path.dirname(os.path.abspath(__file__))
RUNS = int(os.environ.get("RUNS", "5"))
BENCH_BYTES = int(os.environ.get("BENCH_BYTES", str(2 << 30)))


def one_run(binary, tag):
    d = tempfile.mkdtemp(prefix="sim-ab-")
    port_file = os.path.join(d, "port")
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--port-file", port_file],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = t0 + 30
        while time.monotonic() < deadline:
            try:
                with open(port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.001)
        ready = time.monotonic() - t0
        port = int(text)
        base = f"http://127.0.0.1:{port}"

        body = json.dumps({"model": "SM-AB00F", "region": "ABX", "build": {
            "version": "AB00FXXU1AAA1/AB00FOXM1AAA1/AB00FXXU1AAA1/AB00FXXU1AAA1",
            "binary_name": "SM-AB00F_1_20260101000000_abbenchab0_fac.zip.enc4",
            "model_path": "/neofus/9/", "logic_value": "abbenchlogic0000", "plain_size": 1 << 20}})
        t = time.monotonic()
        req = urllib.request.Request(base + "/_sim/builds", data=body.encode(), method="POST")
        urllib.request.urlopen(req, timeout=60).read()
        register = time.monotonic() - t

        t = time.monotonic()
        urllib.request.urlopen(base + "/_sim/builds", timeout=120).read()
        listing = time.monotonic() - t

        # The image is made by now (the listing made it): this is the warm authorisation;
        # cold_inform() times the first BinaryInform on a fresh process.
        t = time.monotonic()
        auth = subprocess.run([sys.executable, os.path.join(here, "sim_authorise.py"), str(port),
                               "SM-BIG00", "BIG"], capture_output=True, text=True, check=True)
        authorise_warm = time.monotonic() - t
        url, header, _ = auth.stdout.splitlines()

        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", f"Authorization: {header}",
                              "-r", f"0-{BENCH_BYTES - 1}", "-w", "%{speed_download}", url],
                             capture_output=True, text=True, check=True)
        speed = float(out.stdout)
        with open(f"/proc/{proc.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)
    return {"ready_ms": ready * 1e3, "register_ms": register * 1e3, "list_builds_ms": listing * 1e3,
            "authorise_warm_ms": authorise_warm * 1e3, "throughput_GBps": speed / 1e9,
            "vmhwm_MiB": hwm / 1024}


def cold_inform(binary):
    """Start-up, then straight to the 20 GB build's BinaryInform (its image made on demand)."""
    d = tempfile.mkdtemp(prefix="sim-ab-")
    port_file = os.path.join(d, "port")
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--port-file", port_file],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(30000):
            if os.path.exists(port_file) and open(port_file).read().endswith("\n"):
                break
            time.sleep(0.001)
        port = int(open(port_file).read())
        sys.path.insert(0, os.path.join(here, "..", "tests", "sim"))
        import independent_client as ic  # noqa: E402

        class Running(ic.Sim):
            def __init__(self, p):
                self.port = p
        sim = Running(port)
        client = ic.FusClient(sim, "smart2")
        client.generate_nonce()
        t = time.monotonic()
        ic.parse_inform(client.inform("SM-BIG00", "BIG", "BIG00XXU1AZA1/BIG00OXM1AZA1/BIG00XXU1AZA1/BIG00XXU1AZA1"))
        return (time.monotonic() - t) * 1e3
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    binaries = {"new": sys.argv[1], "old": sys.argv[2]}
    results = {k: [] for k in binaries}
    for i in range(RUNS):
        for tag, binary in binaries.items():
            r = one_run(binary, tag)
            r["inform_20GB_cold_ms"] = cold_inform(binary)
            results[tag].append(r)
            print(f"run {i + 1} {tag}: " + ", ".join(f"{k} {v:.3g}" for k, v in r.items()), flush=True)
    print(f"medians of {RUNS} (load average now {os.getloadavg()[0]:.1f}):")
    for key in results["new"][0]:
        new = statistics.median(r[key] for r in results["new"])
        old = statistics.median(r[key] for r in results["old"])
        print(f"  {key:22s} new {new:10.3f}  old {old:10.3f}  new/old {new / old:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
