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
import socket
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Proxy, Sim, check, curl, run_cases, wait_until  # noqa: E402
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


# --- what the cache keeps of a sparse build (its LZ4 indexes, its present bytes) ----------

def restart(proxy):
    """fusproxy stopped (SIGTERM: a graceful stop) and started again on the same cache."""
    proxy.stop()
    proxy.start()
    wait_until(lambda: curl(proxy.url("/readyz")).status == 200, "fusproxy /readyz again")


def bytes_read(proc):
    """Bytes the process read through read(2)/pread(2) so far (rchar of /proc/PID/io): the
    cache file's bytes an LZ4 decode reads, the requests' bytes."""
    with open(f"/proc/{proc.pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    raise AssertionError("no rchar in /proc/PID/io")


def cache_entry(proxy, binary_name):
    cache = curl(proxy.url("/api/status")).json()["firmware"]["cache"]
    return cache, next((b for b in cache["builds"] if b["filename"] == binary_name), None)


def plain_name(b):
    """The plain zip's name (the cache's file names): BINARY_NAME without .enc4/.enc2."""
    return b["binary_name"].rsplit(".", 1)[0]


def job_state(proxy, binary_name):
    jobs = curl(proxy.url("/api/status")).json()["firmware"]["downloads"]
    return next((j["state"] for j in jobs if j["filename"] == binary_name), None)


def map_present(path):
    """The plain bytes a saved present map (partial/X.part.map) says are on disk."""
    with open(path) as f:
        lines = f.read().split("\n")
    check(lines[0].startswith("fusproxy-present 1 "), f"map header: {lines[0]}")
    return sum(int(e) - int(b) for b, e, *_ in (x.split() for x in lines[1:] if x and x[0].isdigit()))


@case
def decoded_index_survives_restart(paths):
    """Decode once (recovery.img: no content size in its frame header; super.img: 72 MB in
    256 KiB independent blocks), restart fusproxy on the same cache: the listing and HEAD
    have recovery.img's exact Content-Length (not chunked), and a Range near super.img's end
    is decoded from the nearest indexed block: it reads a few blocks of the cache file,
    not the compressed bytes before it (rchar of the process, a count)."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy, tempfile.TemporaryDirectory() as d:
        b = build_of(sim, "SM-A207F", "SER")
        truth = sim_members(sim, b["binary_name"], "AP/super.img.lz4", "AP/recovery.img.lz4")
        ap = {e["name"]: e for e in sim_member(truth, "AP")["entries"]}
        rec, sup = ap["recovery.img.lz4"], ap["super.img.lz4"]
        check(not rec["content_size_in_header"] and sup["independent_blocks"], "the sim's frames")
        base = proxy.url("/firmware/SM-A207F/SER/latest/files/AP")
        status, h, img = get(f"{base}/recovery.img")
        check(status == 200 and h.get("transfer-encoding") == "chunked", "recovery.img chunked")
        check(hashlib.sha256(img).hexdigest() == rec["decoded_sha256"], "recovery.img bytes")
        super_path = os.path.join(d, "super.img")
        status, _ = fetch_to(f"{base}/super.img", super_path)
        check(status == 200, f"super.img: {status}")
        with open(super_path, "rb") as f:
            check(hashlib.sha256(f.read()).hexdigest() == sup["decoded_sha256"], "super.img bytes")
        index_file = os.path.join(proxy.cache_dir, "cache", "partial",
                                  plain_name(b) + ".part.lz4index")

        restart(proxy)
        base = proxy.url("/firmware/SM-A207F/SER/latest/files/AP")  # a new port
        listed = {e["name"]: e for e in curl(base + "/").json()}
        check(listed["recovery.img.lz4"]["decoded_size"] == rec["decoded_size"],
              f"listing after a restart: {listed['recovery.img.lz4']}")
        status, h, _ = get(f"{base}/recovery.img", "-I")
        check(status == 200 and h.get("content-length") == str(rec["decoded_size"]) and
              "transfer-encoding" not in h, f"HEAD after a restart: {status} {h}")
        status, h, img = get(f"{base}/recovery.img")
        check(status == 200 and "transfer-encoding" not in h and
              hashlib.sha256(img).hexdigest() == rec["decoded_sha256"], "GET after a restart")

        a = sup["decoded_size"] * 9 // 10 + 777
        before = bytes_read(proxy.proc)
        status, _, part = get(f"{base}/super.img", "-r", f"{a}-{a + 65535}")
        read = bytes_read(proxy.proc) - before
        with open(super_path, "rb") as f:
            f.seek(a)
            check(status == 206 and part == f.read(65536), f"super.img range: {status}")
        print(f"  a 64 KiB range at 90 % of super.img ({sup['size']} compressed bytes) read "
              f"{read} bytes after the restart")
        check(read < sup["size"] // 8, f"decoded from the frame's start? {read} bytes read")
        check(os.path.exists(index_file), f"no {index_file}")


@case
def partial_counted_by_present_bytes_after_restart(paths):
    """A sparse build (a listing and a few entries of a 24 MiB build) counts by the bytes
    present; after a restart the start-up scan indexes it by its record with the bytes its
    map says present (not its full size), and opening its job keeps counting the bytes
    present."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        b = build_of(sim, "SM-A207F", "SER")
        base = proxy.url("/firmware/SM-A207F/SER/latest/files/AP")
        check(curl(base + "/").status == 200, "listing")
        for name in ("boot.img", "recovery.img.lz4", "vbmeta.img"):
            check(get(f"{base}/{name}")[0] == 200, name)
        wait_until(lambda: job_state(proxy, b["binary_name"]) == "idle", "the sparse job idle")
        _, before = cache_entry(proxy, b["binary_name"])
        check(before and not before["verified"] and 0 < before["bytes"] < b["plain_size"] // 4,
              f"sparse before the restart: {before}")
        restart(proxy)
        part_map = os.path.join(proxy.cache_dir, "cache", "partial",
                                plain_name(b) + ".part.map")
        present = map_present(part_map)
        cache, after = cache_entry(proxy, b["binary_name"])
        check(after is not None, f"the partial build is not indexed after a restart: {cache}")
        check(not after["verified"] and after["bytes"] == present == before["bytes"],
              f"counted {after['bytes']}, present {present}, before {before['bytes']}")
        check(cache["used_bytes"] == present, f"used_bytes {cache['used_bytes']} != {present}")
        base = proxy.url("/firmware/SM-A207F/SER/latest/files/AP")  # a new port
        check(get(f"{base}/boot.img")[0] == 200, "boot.img after the restart")
        # Its job open (the zip directory, read through the job now, lands in its file too):
        # still the bytes present, not the build's size.
        wait_until(lambda: job_state(proxy, b["binary_name"]) == "idle", "the sparse job idle")
        cache, opened = cache_entry(proxy, b["binary_name"])
        check(present <= opened["bytes"] < b["plain_size"] // 4 and
              cache["used_bytes"] == opened["bytes"],
              f"once its job is open: {opened['bytes']} / {cache['used_bytes']}, present {present}")


def held_range_reader(url, first, last):
    """A Range request that stays in flight: the client reads the status line and then
    nothing, with a tiny receive window, so the server cannot finish writing and keeps the
    build pinned."""
    u = urllib.parse.urlsplit(url)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((u.hostname, u.port))
    s.sendall(f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nRange: bytes={first}-{last}\r\n\r\n"
              .encode())
    check(s.recv(12).startswith(b"HTTP/1.1 206"), f"held read of {url} did not start")
    return s


@case
def sparse_partial_evicted_never_while_read(paths):
    """--cache-max-bytes with room for build B (2 MiB) and a few MiB more: 16 MiB of build
    A's super.img.lz4 read sparsely (held by a slow client) pin A: B's download is 507
    cache_full and A keeps its files. Once the reader left and A's job is idle, B's download
    evicts A's partial files (least recently used, by its present bytes) and completes;
    /api/status shows B verified and A gone."""
    with Sim(paths) as sim:
        a = build_of(sim, "SM-A207F", "SER")
        bb = build_of(sim, "SM-G990B", "BTU")
        limit = bb["plain_size"] + 4 * MiB
        with Proxy(paths, sim, extra=["--cache-max-bytes", str(limit)]) as proxy:
            base = proxy.url("/firmware/SM-A207F/SER/latest/files/AP")
            check(curl(base + "/").status == 200, "A's listing")
            check(get(f"{base}/recovery.img")[0] == 200, "A's recovery.img")
            partial = os.path.join(proxy.cache_dir, "cache", "partial")
            a_files = [os.path.join(partial, plain_name(a) + x)
                       for x in (".part", ".part.map", ".part.json", ".part.lz4index")]
            held = held_range_reader(f"{base}/super.img.lz4", 0, 16 * MiB - 1)

            def a_entry():
                return cache_entry(proxy, a["binary_name"])[1]

            wait_until(lambda: (a_entry() or {}).get("readers", 0) > 0, "the held reader pins A")
            # The whole range is fetched ahead of the slow client: A soon holds more than the
            # room left beside B.
            wait_until(lambda: a_entry()["bytes"] > 8 * MiB, "A's range fetched", timeout=30)
            b_url = proxy.url("/firmware/SM-G990B/BTU/latest/download")
            r = curl(b_url)
            check(r.status == 507 and r.error_code() == "cache_full", f"B while A is read: {r}")
            check(a_entry() is not None and all(os.path.exists(f) for f in a_files[:2]),
                  "A was evicted while read")
            held.close()

            def a_idle():
                e = a_entry()
                return (e is not None and e["readers"] == 0 and
                        job_state(proxy, a["binary_name"]) == "idle")

            wait_until(a_idle, "A's reader gone and its job idle", timeout=30)
            counted = a_entry()["bytes"]
            check(counted > 4 * MiB, f"A counts its present bytes: {counted}")
            # HEAD never evicts; it answers 200 once evicting A would make room (the idle job's
            # last task ends within its 100 ms tick).
            wait_until(lambda: curl(b_url, "-I").status == 200, "B fits once A is evictable")
            check(a_entry() is not None, "a HEAD evicted A")
            with tempfile.TemporaryDirectory() as d:
                status, _ = fetch_to(b_url, os.path.join(d, "b.zip"))
                check(status == 200, f"B once A is idle: {status}")
                with open(os.path.join(d, "b.zip"), "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            check(digest == sim.get_json(f"/_sim/builds/{bb['binary_name']}/sha256")["sha256"],
                  "B's bytes")
            cache, b_entry = cache_entry(proxy, bb["binary_name"])
            check(b_entry and b_entry["verified"], f"B verified in /api/status: {cache}")
            check(a_entry() is None, f"A not evicted: {cache}")
            check(not any(os.path.exists(f) for f in a_files), "A's partial files left")
            check(cache["used_bytes"] <= limit, f"used {cache['used_bytes']} > limit {limit}")
            check("evicted partial" in proxy.tail(400), "the eviction is logged")


@case
def warm_requests_open_no_session(paths):
    """Once a build's directory and a member's header are known, listings and entries open
    no FUS session of their own: member headers are remembered, and bytes not on disk yet (a
    new member's local header, its tar headers, its entries) are fetched by the build's job
    over its authorised session (the simulator's sessions_created does not grow)."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        b = build_of(sim, "SM-A207F", "SER")
        truth = sim_members(sim, b["binary_name"])
        base = proxy.url("/firmware/SM-A207F/SER/latest/files")
        check(curl(base + "/AP/").status == 200, "AP listing")
        check(get(f"{base}/AP/boot.img")[0] == 200, "boot.img")
        before = sim.stats()["sessions_created"]
        for _ in range(3):
            check(curl(base + "/AP/").status == 200, "AP listing again")
            check(get(f"{base}/AP/boot.img", "-I")[0] == 200, "HEAD boot.img")
            check(get(f"{base}/AP/vbmeta.img")[0] == 200, "vbmeta.img")
        bl = sim_member(truth, "BL")
        r = curl(base + "/BL/")
        check(r.status == 200 and [e["name"] for e in r.json()] ==
              [e["name"] for e in bl["entries"]], f"BL listing: {r}")
        first = bl["entries"][0]["name"]
        status, _, raw = get(f"{base}/BL/{first}")
        check(status == 200 and len(raw) == bl["entries"][0]["size"], f"BL/{first}: {status}")
        after = sim.stats()["sessions_created"]
        print(f"  sessions created: {before} after the first listing and entry, {after} after "
              f"10 more requests (a new member among them)")
        check(after == before, f"{after - before} more FUS sessions for warm requests")


if __name__ == "__main__":
    run_cases(CASES)
