#!/usr/bin/env python3
"""Files inside the firmware's tar members end to end (issue 14): …/files/{member}/ lists a
tar/.tar.md5 member, …/files/{member}/{entry} serves an entry and …/{name} the LZ4-decoded
{name}.lz4, fetched SPARSELY (only the blocks the headers and the entry need), reused by a
later full download. fus-sim and fusproxy as processes, curl as the client; the truth comes
from independent tools: GNU tar on the whole member, the lz4 CLI, the simulator's hashes.

usage: entries_tests.py --fusproxy PATH --fus-sim PATH [--source-dir DIR] CASE...  (--list)
"""
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Proxy, Sim, check, curl, run_cases  # noqa: E402
from stream_tests import build_of, fetch_to  # noqa: E402

CASES = {}
MiB = 1 << 20


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def served(sim, binary_name):
    """Bytes the simulator served of a build's file (every ranged GET)."""
    b = sim.stats()["builds"].get(binary_name, {})
    return b.get("bytes_served", 0)


def lz4_decode(data):
    out = subprocess.run(["lz4", "-dc"], input=data, capture_output=True, check=True)
    return out.stdout


def get(url, *args):
    """(status, headers, body bytes) with curl."""
    with tempfile.TemporaryDirectory() as d:
        body = os.path.join(d, "b")
        status, r = fetch_to(url, body, "-D", os.path.join(d, "h"), *args)
        headers = {}
        with open(os.path.join(d, "h"), errors="replace") as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
        data = open(body, "rb").read() if os.path.exists(body) else b""
        return status, headers, data


@case
def listing_entries_decoded_then_full(paths):
    """Cold: /files/AP/ lists the AP member's entries (the MD5 line is no entry); every .lz4
    entry's bytes equal what GNU tar extracts from the whole member, its decoded image equals
    `lz4 -d` of them, with exact Content-Length (HEAD too) and Range inside both; all of it
    fetched sparsely (well under the build), and a later full download fetches only the
    missing bytes (<= 1.05 x the build in total) and verifies."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy, tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-A207F", "SER")
        base = proxy.url("/firmware/SM-A207F/SER/latest/files")
        r = curl(base + "/AP/")
        check(r.status == 200, f"listing: {r}")
        entries = r.json()
        check(entries and all({"name", "size", "mtime", "mode", "offset", "decoded_size"} <= set(e)
                              for e in entries), f"fields: {entries[:2]}")
        check(not any(e["name"].endswith(".tar") for e in entries), "the MD5 line is no entry")
        ap_truth = sim_member(sim_members(sim, b["binary_name"]), "AP")
        check([(e["name"], e["size"], e["offset"]) for e in entries] ==
              [(e["name"], e["size"], e["offset"]) for e in ap_truth["entries"]],
              "the listing is the simulator's")
        listed = served(sim, b["binary_name"])
        # The small images (boot, vbmeta, …): super.img would be most of a small build.
        small = b["encrypted_size"] // 16
        lz4s = [e for e in entries if e["name"].endswith(".lz4") and e["size"] < small]
        check(lz4s, "the AP member has .lz4 entries")
        got = {}
        for e in lz4s[:4]:
            status, h, raw = get(f"{base}/AP/{e['name']}")
            check(status == 200 and len(raw) == e["size"], f"{e['name']}: {status} {len(raw)}")
            check(int(h["content-length"]) == e["size"], "raw Content-Length")
            name = e["name"][:-4]
            status, h, img = get(f"{base}/AP/{name}")
            check(status == 200, f"{name}: {status}")
            check(img == lz4_decode(raw), f"{name}: the decoded image differs from lz4 -d")
            # Exact when the frame header has the content size; else the first answer is
            # chunked and its decode teaches the service the size (HEAD below has it).
            if e["decoded_size"] is not None:
                check(int(h["content-length"]) == len(img) == e["decoded_size"],
                      f"{name}: Content-Length")
            else:
                check(h.get("transfer-encoding") == "chunked", f"{name}: chunked first")
            check(h.get("content-disposition", "").endswith(f'filename="{os.path.basename(name)}"'),
                  "named after the image")
            # Range inside both; If-Range with the ETag; HEAD from what the service learnt.
            a, z = len(img) // 3, len(img) // 3 + 4095
            status, h2, part = get(f"{base}/AP/{name}", "-r", f"{a}-{z}", "-H",
                                   f"If-Range: {h['etag']}")
            check(status == 206 and part == img[a:z + 1], f"{name}: decoded range ({status})")
            status, _, part = get(f"{base}/AP/{e['name']}", "-r", f"{e['size'] // 2}-")
            check(status == 206 and part == raw[e["size"] // 2:], "raw range")
            status, h3, _ = get(f"{base}/AP/{name}", "-I")
            check(status == 200 and int(h3["content-length"]) == len(img), "HEAD")
            got[e["name"]] = raw
        relisted = curl(base + "/AP/").json()
        for e in relisted:
            if e["name"] in got:
                check(e["decoded_size"] is not None, f"{e['name']}: decoded size kept")
        sparse = served(sim, b["binary_name"])
        print(f"  listing: {listed} bytes upstream; listing + {len(got)} entries twice: "
              f"{sparse} bytes of {b['encrypted_size']}")
        check(sparse < b["encrypted_size"] / 4, f"sparse fetch took {sparse} bytes")

        # The whole member by its full name, extracted by GNU tar: the truth for the entries.
        ap = next(m for m in curl(base).json() if os.path.basename(m["name"]).startswith("AP_"))
        member = os.path.join(d, "ap.tar")
        status, _ = fetch_to(f"{base}/{ap['name']}", member)
        check(status == 200, f"member: {status}")
        with tarfile.open(member) as t:
            for name, raw in got.items():
                check(t.extractfile(name).read() == raw, f"{name}: differs from GNU tar's")
        status, _ = fetch_to(proxy.url("/firmware/SM-A207F/SER/latest/download"),
                             os.path.join(d, "full.zip"))
        check(status == 200, f"download: {status}")
        total = served(sim, b["binary_name"])
        ratio = total / b["encrypted_size"]
        print(f"  after a full download: {total} bytes upstream, {ratio:.4f} x the build")
        check(ratio <= 1.05, f"full download after sparse reads fetched {ratio:.3f} x")
        with open(os.path.join(d, "full.zip"), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        truth = sim.get_json(f"/_sim/builds/{b['binary_name']}/sha256")["sha256"]
        check(digest == truth, "the completed build is the simulator's")


def sim_members(sim, binary_name, *sha):
    q = "&".join("sha256=" + x for x in sha)
    return sim.get_json(f"/_sim/builds/{binary_name}/members" + (f"?{q}" if q else ""))


def sim_member(listing, kind):
    return next(m for m in listing["members"] if m["kind"] == kind)


@case
def big_build_boot_img_sparse(paths):
    """The 20 GB build, cold: /files/AP/ lists the simulator's entries (names, sizes, offsets);
    boot.img.lz4 and the decoded boot.img have the simulator's SHA-256; a Range inside both
    equals the same slice of a local `lz4 -d`; the bytes upstream served for all of it are at
    most boot.img.lz4's encrypted extent + 4 MiB."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy, tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-BIG00", "BIG")
        truth = sim_members(sim, b["binary_name"], "AP/boot.img.lz4")
        ap = sim_member(truth, "AP")
        boot = next(e for e in ap["entries"] if e["name"] == "boot.img.lz4")
        base = proxy.url("/firmware/SM-BIG00/BIG/latest/files")
        check(curl(proxy.url("/firmware/SM-BIG00/BIG/latest")).status == 200, "metadata")
        before = served(sim, b["binary_name"])
        r = curl(base + "/AP/")
        check(r.status == 200, f"listing: {r}")
        listed = [(e["name"], e["size"], e["offset"]) for e in r.json()]
        want = [(e["name"], e["size"], e["offset"]) for e in ap["entries"]]
        check(listed == want, f"listing differs from the simulator's: {listed} vs {want}")
        raw_path, img_path = os.path.join(d, "boot.img.lz4"), os.path.join(d, "boot.img")
        status, _ = fetch_to(f"{base}/AP/boot.img.lz4", raw_path)
        check(status == 200, f"boot.img.lz4: {status}")
        status, _ = fetch_to(f"{base}/AP/boot.img", img_path)
        check(status == 200, f"boot.img: {status}")
        with open(raw_path, "rb") as f:
            raw = f.read()
        with open(img_path, "rb") as f:
            img = f.read()
        check(hashlib.sha256(raw).hexdigest() == boot["sha256"], "boot.img.lz4 SHA-256")
        check(hashlib.sha256(img).hexdigest() == boot["decoded_sha256"], "boot.img SHA-256")
        local = lz4_decode(raw)
        check(local == img, "lz4 -d of the entry")
        a = len(img) // 2 + 12345
        status, _, part = get(f"{base}/AP/boot.img", "-r", f"{a}-{a + 99999}")
        check(status == 206 and part == local[a:a + 100000], f"decoded range: {status}")
        status, _, part = get(f"{base}/AP/boot.img.lz4", "-r", f"{len(raw) - 5000}-")
        check(status == 206 and part == raw[-5000:], f"raw range: {status}")
        upstream = served(sim, b["binary_name"]) - before
        z = boot["zip_offset"]
        extent = ((z + boot["size"] + 15) & ~15) - (z & ~15)
        print(f"  boot.img.lz4 {boot['size']} bytes, extent {extent}; upstream served "
              f"{upstream} bytes (extent + {(upstream - extent) / MiB:.2f} MiB) for the listing, "
              f"the entry, the image and two ranges")
        check(upstream <= extent + 4 * MiB, f"upstream {upstream} > extent {extent} + 4 MiB")


@case
def deflated_ap_right_bytes(paths):
    """A build whose AP member is deflated (SM-G990B/BTU): the listing and the entries are
    right (inflated from the member's start, docs/archive.md), decoded images too."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        b = build_of(sim, "SM-G990B", "BTU")
        truth = sim_members(sim, b["binary_name"], "1")
        ap = sim_member(truth, "AP")
        check(ap["deflated"], "the simulator's AP is deflated")
        base = proxy.url("/firmware/SM-G990B/BTU/latest/files")
        r = curl(base + "/AP/")
        check(r.status == 200, f"listing: {r}")
        check([e["name"] for e in r.json()] == [e["name"] for e in ap["entries"]], "names")
        for e in ap["entries"]:
            status, _, raw = get(f"{base}/AP/{e['name']}")
            check(status == 200 and hashlib.sha256(raw).hexdigest() == e["sha256"],
                  f"{e['name']}: {status}")
            if e.get("lz4") and not e.get("corrupt"):
                status, _, img = get(f"{base}/AP/{e['name'][:-4]}")
                check(status == 200 and hashlib.sha256(img).hexdigest() == e["decoded_sha256"],
                      f"{e['name'][:-4]}: {status}")


@case
def corrupt_lz4_cut_and_logged(paths):
    """SM-A556E/INS: AP's boot.img.lz4 has a corrupt block: the decoded image's connection is
    cut (curl sees an incomplete body), what arrived is a prefix of the valid bytes, the
    proxy logs it; its raw entry is still served as stored; the text member is 415; the
    service keeps serving."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy, tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-A556E", "INS")
        truth = sim_members(sim, b["binary_name"], "AP/boot.img.lz4")
        boot = next(e for e in sim_member(truth, "AP")["entries"] if e["name"] == "boot.img.lz4")
        check(boot["corrupt"], "the simulator's boot.img.lz4 is corrupt")
        base = proxy.url("/firmware/SM-A556E/INS/latest/files")
        status, _, raw = get(f"{base}/AP/boot.img.lz4")
        check(status == 200 and hashlib.sha256(raw).hexdigest() == boot["sha256"], "raw entry")
        out = os.path.join(d, "boot.img")
        r = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", f"{base}/AP/boot.img"],
                           capture_output=True, text=True, timeout=60)
        code = r.stdout.strip()
        got = open(out, "rb").read() if os.path.exists(out) else b""
        # 502 before the headers (the damage found first), or a cut body after them.
        check(code == "502" or r.returncode != 0, f"not cut: curl {r.returncode} HTTP {code}")
        if code != "502":
            valid = lz4_decode_prefix(raw)
            check(got == valid[:len(got)], "the bytes before the cut are the valid prefix")
            check(len(got) < (boot.get("decoded_size") or len(valid) + 1), "short")
        check("decoding" in proxy.tail(200) or code == "502", "logged")
        text = next(m for m in truth["members"] if not m["tar"])
        r = curl(f"{base}/{text['name']}/")
        check(r.status == 415 and r.error_code() == "not_a_tar", f"text member: {r}")
        check(curl(proxy.url("/healthz")).status == 200, "still serving")


def lz4_decode_prefix(data):
    """What `lz4 -d` writes before it stops at the damage."""
    out = subprocess.run(["lz4", "-dc"], input=data, capture_output=True)
    return out.stdout


@case
def bad_input_is_clear(paths):
    """An unknown member or entry: 404 with the listing's URL; a member that is not a tar:
    415 not_a_tar; a deeper path than the tar has: 404; the service keeps serving."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        base = "/firmware/SM-A207F/SER/latest/files"
        r = curl(proxy.url(base + "/XX/"))
        check(r.status == 404 and r.error_code() == "not_found", f"unknown member: {r}")
        check(r.json()["error"]["list_url"].endswith("/files"), f"list_url: {r}")
        r = curl(proxy.url(base + "/AP/no-such.img"))
        check(r.status == 404, f"unknown entry: {r}")
        lu = r.json()["error"]["list_url"]
        check(lu.endswith("/") and "/files/AP_" in lu, f"list_url names the member: {lu}")
        listing = curl(proxy.url(lu))
        check(listing.status == 200, f"the list_url answers: {listing}")
        r = curl(proxy.url(base + "/AP/no/such/dir.img"))
        check(r.status == 404, f"deep path: {r}")
        # A member that is not a tar (the bad-input build's text member): 415.
        r = curl(proxy.url("/firmware/SM-A556E/INS/latest/files/release_notes.txt/"))
        check(r.status == 415 and r.error_code() == "not_a_tar", f"non-tar: {r}")
        r = curl(proxy.url("/firmware/SM-A556E/INS/latest/files/release_notes.txt/x.img"))
        check(r.status == 415, f"an entry of a non-tar: {r}")
        check(curl(proxy.url("/healthz")).status == 200, "still serving")


@case
def cli_get_file(paths):
    """`fusproxy get MODEL REGION --file AP/boot.img -o FILE` writes the decoded image (the
    bytes the service serves and lz4 -d gives); an unknown entry exits 3, FILE not written."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy, tempfile.TemporaryDirectory() as d:
        up = ["--fus-url", sim.base_url, "--cloud-url", sim.base_url, "--fota-url", sim.base_url]
        entries = curl(proxy.url("/firmware/SM-A207F/SER/latest/files/AP/")).json()
        e = min((e for e in entries if e["name"].endswith(".lz4")), key=lambda e: e["size"])
        name = e["name"][:-4]
        out = os.path.join(d, "img")
        r = subprocess.run([paths.fusproxy, "get", "SM-A207F", "SER", "--file", f"AP/{name}",
                            "-o", out, *up], capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"get --file: {r.returncode} {r.stderr}")
        status, _, raw = get(proxy.url(f"/firmware/SM-A207F/SER/latest/files/AP/{e['name']}"))
        check(status == 200, "raw entry")
        with open(out, "rb") as f:
            check(f.read() == lz4_decode(raw), "get --file wrote the decoded image")
        check(not any(n.endswith(".fetch") for n in os.listdir(d)), "scratch removed")
        missing = os.path.join(d, "none")
        r = subprocess.run([paths.fusproxy, "get", "SM-A207F", "SER", "--file", "AP/none.img",
                            "-o", missing, *up], capture_output=True, text=True, timeout=120)
        check(r.returncode == 3 and not os.path.exists(missing), f"unknown: {r.returncode}")
        check("still running" not in r.stderr, f"tasks joined: {r.stderr}")


if __name__ == "__main__":
    run_cases(CASES)
