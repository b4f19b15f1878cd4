#!/usr/bin/env python3
"""The FUS session end to end against the strict fus-sim (issue 11, points 1, 2, 4, 5):
cold downloads in both dialects (one session per build: GenerateNonce -> BinaryInform ->
InitForMass -> GETs), the smart2 version list from SmartHistory, lenient answers
(BINARY_CRC absent or signed, an empty/text InitForMass body), a refused InitForMass failing
the fetch at once, and a TAC as the legacy IMEI.

usage: session_tests.py --fusproxy PATH --fus-sim PATH [--source-dir DIR] CASE...  (--list)
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAST, Failure, Proxy, Sim, check, curl, run_cases, wait_until  # noqa: E402
from stream_tests import build_of, sha256_file, sim_sha256  # noqa: E402

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def download(proxy, model, region, path, version="latest"):
    url = proxy.url(f"/firmware/{model}/{region}/{version}/download")
    r = subprocess.run(["curl", "-sS", "--globoff", "--max-time", "120", "-o", path, "-w",
                        "%{http_code}", url], capture_output=True, text=True, timeout=150)
    return int(r.stdout.strip() or 0), r.stderr


def kind(stats, name):
    return stats.get("kinds", {}).get(name, {})


def http_count(stats, name, status):
    return kind(stats, name).get("http", {}).get(str(status), 0)


def strict_refusals(stats):
    return sum(stats.get("strict_refusals", {}).values())


def cold_download(paths, dialect, model, region, sim_args=None, proxy_extra=()):
    """Empty cache, the download as the very first request: the right bytes, and the strict
    simulator refused nothing. Returns (sim stats, the build, the metadata JSON)."""
    sim_args = sim_args or {}
    with Sim(paths, **sim_args) as sim, \
            Proxy(paths, sim, dialect=dialect, extra=[*FAST, *proxy_extra]) as proxy, \
            tempfile.TemporaryDirectory() as d:
        check(sim.stats().get("strict") is True, "fus-sim runs strict")
        b = build_of(sim, model, region)
        out = os.path.join(d, "fw.zip")
        status, err = download(proxy, model, region, out)
        check(status == 200, f"download: HTTP {status} {err}\n{proxy.tail()}")
        check(sha256_file(out) == sim_sha256(sim, b), "SHA-256 differs from the simulator's")
        stats = sim.stats()
        check(strict_refusals(stats) == 0, f"strict refusals: {stats.get('strict_refusals')}")
        check(http_count(stats, "download", 403) == 0, f"403s: {kind(stats, 'download')}")
        meta = curl(proxy.url(f"/firmware/{model}/{region}/latest")).json()
        return stats, b, meta


@case
def cold_download_smart2(paths):
    """smart2, cold: SmartHistory answered (after GenerateNonce, with the cookie) and gave the
    version list; the download session did BinaryInform before InitForMass."""
    stats, b, meta = cold_download(paths, "smart2", "SM-S931U1", "XAA")
    check(http_count(stats, "history", 200) >= 1, f"SmartHistory: {kind(stats, 'history')}")
    check(meta["version"] == b["served_version"], f"latest {meta['version']}")
    # Resolver session + fetch session (+ none for FOTA): each did BinaryInform and InitForMass.
    check(http_count(stats, "inform", 200) >= 2, f"BinaryInform: {kind(stats, 'inform')}")
    check(kind(stats, "init").get("fus", {}).get("400", 0) == 0, f"init: {kind(stats, 'init')}")


@case
def cold_download_legacy(paths):
    """legacy, cold, IMEI required: the right bytes; FOTA answered Kies2.0_FUS (strict)."""
    stats, b, meta = cold_download(paths, "legacy", "SM-A207F", "SER",
                                   sim_args={"require_imei": True},
                                   proxy_extra=["--imei", "SM-A207F=356728110000003"])
    check(http_count(stats, "fota", 200) >= 1, f"FOTA: {kind(stats, 'fota')}")


@case
def version_list_from_smart_history(paths):
    """GET /firmware/M/R in smart2 asks SmartHistory (with a session) and lists its betas,
    which FOTA does not know."""
    with Sim(paths) as sim, Proxy(paths, sim, extra=FAST) as proxy:
        r = curl(proxy.url("/firmware/SM-S931U1/XAA"))
        check(r.status == 200, f"list: {r}")
        stats = sim.stats()
        check(http_count(stats, "history", 200) == 1, f"SmartHistory: {kind(stats, 'history')}")
        check(http_count(stats, "nonce", 200) >= 1, "GenerateNonce before SmartHistory")
        check(strict_refusals(stats) == 0, f"strict refusals: {stats.get('strict_refusals')}")
        versions = r.json()["versions"]
        check(any(v.get("beta") for v in versions), f"no beta from SmartHistory: {versions[:3]}")


@case
def binary_crc_absent(paths):
    """BinaryInform without BINARY_CRC: crc32 null, integrity size+pad, the right bytes."""
    stats, b, meta = cold_download(paths, "smart2", "SM-A207F", "SER",
                                   sim_args={"faults": "no-crc"})
    check(meta["crc32"] is None, f"crc32 {meta['crc32']}")
    check(meta["integrity"] == "size+pad", f"integrity {meta.get('integrity')}")


@case
def binary_crc_absent_content_md5(paths):
    """No BINARY_CRC, Content-MD5 (hex) on the downloads: verified by it, the right bytes."""
    with Sim(paths, faults="no-crc", extra=["--content-md5", "hex"]) as sim, \
            Proxy(paths, sim, extra=FAST) as proxy, tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-A207F", "SER")
        out = os.path.join(d, "fw.zip")
        status, err = download(proxy, "SM-A207F", "SER", out)
        check(status == 200, f"download: HTTP {status} {err}")
        check(sha256_file(out) == sim_sha256(sim, b), "SHA-256 differs")
        wait_until(lambda: "verified by Content-MD5" in proxy.tail(200), "verified by Content-MD5")


@case
def binary_crc_signed(paths):
    """BINARY_CRC written as a signed 32-bit number: accepted, shown unsigned, verified."""
    with Sim(paths, faults="signed-crc") as sim, Proxy(paths, sim, extra=FAST) as proxy, \
            tempfile.TemporaryDirectory() as d:
        found = None
        for b in sim.builds():
            if b["hosted"] and not b["beta"] and not b["answers_with_newest"] and \
                    b["crc32"] >= 2**31:
                found = b
                break
        check(found is not None, "a build whose CRC-32 is >= 2^31 (negative when signed)")
        b = found
        vid = b["served_version"].replace("/", "_")
        out = os.path.join(d, "fw.zip")
        status, err = download(proxy, b["model"], b["region"], out, vid)
        check(status == 200, f"download: HTTP {status} {err}")
        check(sha256_file(out) == sim_sha256(sim, b), "SHA-256 differs")
        check(sim.stats()["faults_fired"].get("signed-crc", 0) >= 1, "signed-crc fired")
        meta = curl(proxy.url(f"/firmware/{b['model']}/{b['region']}/{vid}")).json()
        check(meta["crc32"] == b["crc32"], f"crc32 {meta['crc32']} != {b['crc32']}")


@case
def init_for_mass_empty_body(paths):
    """InitForMass answered 200 with an empty body, then with text/plain OK: success."""
    for value in ("empty", "text"):
        stats, b, meta = cold_download(paths, "smart2", "SM-A207F", "SER",
                                       sim_args={"faults": f"init-body={value}"})
        check(stats["faults_fired"].get("init-body", 0) >= 1, f"init-body={value} fired")


@case
def init_for_mass_refused_fails_at_once(paths):
    """The fetch session's InitForMass refused (HTTP 400 from the 2nd InitForMass on): the
    download fails at once with a clear error, no GET loop of 403s."""
    with Sim(paths, faults="status=400@init+1") as sim, \
            Proxy(paths, sim, extra=FAST) as proxy, tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "fw.zip")
        status, err = download(proxy, "SM-A207F", "SER", out)
        got = os.path.getsize(out) if os.path.exists(out) else 0
        check(status != 200 or got < build_of(sim, "SM-A207F", "SER")["plain_size"],
              f"a refused InitForMass gave a whole download (HTTP {status})")
        stats = sim.stats()
        check(http_count(stats, "download", 403) == 0, f"403s: {kind(stats, 'download')}")
        # The resolver's InitForMass, then the fetch session's, refused once: no retry loop.
        check(kind(stats, "init").get("requests", 0) <= 3, f"init: {kind(stats, 'init')}")
        wait_until(lambda: "InitForMass" in str(curl(proxy.url("/api/status")).json()),
                   "the job's error names InitForMass")


@case
def legacy_tac_as_imei(paths):
    """--imei MODEL=TAC (8 digits): a full Luhn-valid IMEI goes upstream; the right bytes
    (the simulator requires a valid IMEI)."""
    cold_download(paths, "legacy", "SM-A207F", "SER", sim_args={"require_imei": True},
                  proxy_extra=["--imei", "SM-A207F=35672811"])


def main():
    return run_cases(CASES)


if __name__ == "__main__":
    sys.exit(main())
