#!/usr/bin/env python3
"""fus-sim behaviour tests: what it refuses (as Samsung does), every fault mode (it happens,
then stops when its count runs out or it is cleared), the throttle, and the loopback-only
bind. Uses the independent client of independent_client.py (no project code).

usage: sim_behaviour.py --fus-sim PATH CASE     (CASE from --list)
"""
import argparse
import http.client
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from independent_client import (Failure, FusClient, Sim, check, logic_check, parse_inform,  # noqa: E402
                                 smart2_signature, fota, smart_history)

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def pick(sim, **want):
    for b in sim.get_json("/_sim/builds")["builds"]:
        if all(b.get(k) == v for k, v in want.items()) and b["plain_size"] <= 64 * 1024 * 1024:
            return b
    raise Failure(f"no build with {want}")


def authorised(sim, dialect="smart2", build=None, **kw):
    """A client with a session, BinaryInform and InitForMass done for `build`."""
    b = build or pick(sim, hosted=True, beta=False, answers_with_newest=False, encryption="enc4")
    c = FusClient(sim, dialect, **kw)
    c.generate_nonce()
    info = parse_inform(c.inform(b["model"], b["region"], b["version"]))
    a = c.init_for_mass(info["name"], served_version=info["served"], region=b["region"],
                        model_type=info["model_type"])
    check(a.status() == "200", f"InitForMass: {a.status()}")
    return c, info, info["path"] + info["name"]


def fired(sim, name):
    return sim.get_json("/_sim/stats")["faults_fired"][name]


def expect_incomplete(fn, what):
    try:
        fn()
    except (http.client.IncompleteRead, ConnectionError, http.client.RemoteDisconnected):
        return
    raise Failure(what + ": the connection should have been cut")


# ------------------------------------------------------------------- what Samsung refuses

@case
def stale_nonce(binary):
    with Sim(binary) as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        c = FusClient(sim, "smart2")
        c.generate_nonce()
        old_nonce, old_header = c.nonce, c.nonce_header
        check(c.inform(b["model"], b["region"], b["version"]).status() == "200", "inform")
        check(c.nonce_header != old_header, "the NONCE did not rotate")
        # Sign the next POST with the previous nonce: stale -> XML Status 401.
        body = c.inform_body(b["model"], b["region"], b["version"], logic=logic_check(b["version"], old_nonce))
        a = c.post(c.paths["inform"], body, auth=c.authorization("", smart2_signature(old_nonce)))
        check(a.http_status == 200 and a.status() == "401", f"stale nonce: {a.http_status}/{a.status()}")
        check(a.headers.get("NONCE"), "a 401 answer should carry a fresh NONCE")
        # The fresh one works again.
        check(c.inform(b["model"], b["region"], b["version"]).status() == "200", "retry after 401")
        # No cookie: HTTP 401.
        a = c.post(c.paths["inform"], c.inform_body(b["model"], b["region"], b["version"]), cookie=False)
        check(a.http_status == 401, f"POST without JSESSIONID: HTTP {a.http_status}")
        # Legacy without newauth="1": 401.
        lc = FusClient(sim, "legacy")
        lc.generate_nonce()
        a = lc.post(lc.paths["inform"], lc.inform_body(b["model"], b["region"], b["version"]),
                    auth=f'FUS nonce="", signature="{lc.signature()}", nc="", type="", realm=""')
        check(a.status() == "401", f"legacy without newauth: {a.status()}")
        # A download GET signed with a nonce never issued: HTTP 401.
        c, info, f = authorised(sim)
        status, _, _ = c.download_request(f, "bytes=0-15", nonce_header="AAAAAAAAAAAAAAAAAAAAAA==")
        check(status == 401, f"GET with an unknown nonce: HTTP {status}")
        status, _, _ = c.download_request(f, "bytes=0-15", signature="0" * 32)
        check(status == 401, f"GET with a bad signature: HTTP {status}")
        # Any nonce issued to the session authorises the GET (parallel ranges share one).
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 206, f"GET with the newest nonce: HTTP {status}")


@case
def encoded_file_param(binary):
    with Sim(binary) as sim:
        c, info, f = authorised(sim)
        status, _, _ = c.download_request(f.replace("/", "%2F"), "bytes=0-15")
        check(status == 405, f"%-encoded file parameter: HTTP {status} (want 405)")
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 206, f"raw file parameter: HTTP {status}")


@case
def init_for_mass_required(binary):
    with Sim(binary) as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        c = FusClient(sim, "smart2")
        c.generate_nonce()
        info = parse_inform(c.inform(b["model"], b["region"], b["version"]))
        f = info["path"] + info["name"]
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 403, f"download without InitForMass: HTTP {status} (want 403)")
        # Another session's InitForMass does not count.
        other, _, _ = authorised(sim, build=b)
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 403, f"download authorised in another session: HTTP {status}")
        check(c.init_for_mass(info["name"], served_version=info["served"], region=b["region"],
                              model_type=info["model_type"]).status() == "200", "InitForMass")
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 206, f"download after InitForMass: HTTP {status}")


@case
def bad_logic_check(binary):
    with Sim(binary) as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        for dialect in ("smart2", "legacy"):
            c = FusClient(sim, dialect)
            c.generate_nonce()
            a = c.inform(b["model"], b["region"], b["version"], logic="X" * len(c.nonce))
            check(a.status() == "400", f"{dialect} inform with a bad LOGIC_CHECK: {a.status()}")
            info = parse_inform(c.inform(b["model"], b["region"], b["version"]))
            a = c.init_for_mass(info["name"], served_version=info["served"], region=b["region"],
                                model_type=info["model_type"], logic="X" * len(c.nonce))
            check(a.status() == "400", f"{dialect} InitForMass with a bad LOGIC_CHECK: {a.status()}")
            status, _, _ = c.download_request(info["path"] + info["name"], "bytes=0-15")
            check(status == 403, f"{dialect} download after a refused InitForMass: HTTP {status}")
        # Malformed version: F01; unknown pair or version: 400; not hosted: 404.
        c = FusClient(sim, "smart2")
        c.generate_nonce()
        check(c.inform(b["model"], b["region"], "NOT-A-VERSION/X/Y/Z").status() == "F01", "malformed -> F01")
        check(c.inform("SM-NONE", "ZZZ", b["version"]).status() == "400", "unknown pair -> 400")
        gone = pick(sim, hosted=False)
        check(c.inform(gone["model"], gone["region"], gone["version"]).status() == "404", "not hosted -> 404")


@case
def imei_required(binary):
    with Sim(binary, "--require-imei", "--legacy-keys", "2023") as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        c = FusClient(sim, "legacy", keys="2023")
        c.generate_nonce()
        for bad in ("", "490154203237517", "12345", "49015420323751X"):
            a = c.inform(b["model"], b["region"], b["version"], imei=bad)
            check(a.status() == "408", f"IMEI {bad!r}: Status {a.status()} (want 408)")
        for good in ("490154203237518", "R58M12ABCDE"):
            a = c.inform(b["model"], b["region"], b["version"], imei=good)
            check(a.status() == "200", f"IMEI/serial {good!r}: Status {a.status()}")
        # The wrong key set cannot even read the nonce (or signs wrongly).
        w = FusClient(sim, "legacy", keys="2026")
        try:
            w.generate_nonce()
            a = w.inform(b["model"], b["region"], b["version"])
            check(a.status() == "401", "a wrong key set must not be accepted")
        except (Failure, ValueError, UnicodeDecodeError):
            pass


@case
def ranges(binary):
    with Sim(binary) as sim:
        c, info, f = authorised(sim)
        total = info["size"]
        status, h, full = c.download_request(f)
        check(status == 200 and len(full) == total, f"no Range: HTTP {status}, {len(full)} bytes")
        check(h.get("Accept-Ranges") == "bytes", "Accept-Ranges")
        for header, (a, b) in {f"bytes=10-99": (10, 99), f"bytes={total - 7}-": (total - 7, total - 1),
                               "bytes=-33": (total - 33, total - 1),
                               f"bytes=5-{total + 1000}": (5, total - 1)}.items():
            status, h, body = c.download_request(f, header)
            check(status == 206, f"{header}: HTTP {status}")
            check(h.get("Content-Range") == f"bytes {a}-{b}/{total}", f"{header}: {h.get('Content-Range')}")
            check(body == full[a:b + 1], f"{header}: wrong bytes")
        for header in (f"bytes={total}-", f"bytes={total + 5}-{total + 9}", "bytes=-0"):
            status, h, body = c.download_request(f, header)
            check(status == 416, f"{header}: HTTP {status} (want 416)")
            check(h.get("Content-Range") == f"bytes */{total}", f"{header}: {h.get('Content-Range')}")
        status, _, body = c.download_request(f, "bytes=abc")
        check(status == 200 and len(body) == total, "an invalid Range is ignored")
        # Keep-alive: several ranges on one connection.
        conn = sim.conn()
        for i in range(3):
            status, _, body = c.download_request(f, f"bytes={i * 16}-{i * 16 + 15}", conn=conn)
            check(status == 206 and body == full[i * 16:i * 16 + 16], "keep-alive range")


@case
def bind_refused(binary):
    for listen in ("0.0.0.0:0", "8.8.8.8:0"):
        p = subprocess.run([binary, "--listen", listen, "--port-file", "/dev/null"], capture_output=True,
                           timeout=10)
        check(p.returncode != 0, f"--listen {listen} must be refused")
        check(b"--allow-remote" in p.stderr, f"the message should name --allow-remote: {p.stderr!r}")
    p = subprocess.run([binary, "--faults", "explode*2"], capture_output=True, timeout=10)
    check(p.returncode != 0 and b"explode" in p.stderr, "a bad fault spec is refused at start")
    with Sim(binary, "--allow-remote") as sim:  # still loopback here: allowed either way
        check(sim.get_json("/_sim/stats")["requests_total"] == 0, "stats on a fresh simulator")


EUX_CATALOGUE = {"models": [{"model": "SM-S911B", "region": "EUX", "in_fota": True, "builds": [{
    "version": "S911BXXS8DYD1/S911BOXM8DYD1/S911BXXS8DYD1/S911BXXS8DYD1", "os": "V(Android 15)",
    "beta": False, "hosted": True, "answers_with_newest": False, "encryption": "enc4",
    "binary_name": "SM-S911B_2_20250410123456_k3j9x0pq2w_fac.zip.enc4", "model_path": "/neofus/9/",
    "logic_value": "q8w7e6r5t4y3u2i1", "model_type": "9", "last_modified": "20250410124000",
    "description": "https://doc.samsungmobile.com/SM-S911B/EUX/doc.html", "plain_size": 200000,
    "seed": 7}]}]}


@case
def multi_csc_and_catalogue_file(binary):
    import json
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(EUX_CATALOGUE, f)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as bad:
        bad.write('{"models": [{"model": 5}]}')
    try:
        p = subprocess.run([binary, "--catalogue", bad.name], capture_output=True, timeout=10)
        check(p.returncode != 0 and b"--catalogue" in p.stderr, f"a bad catalogue is refused: {p.stderr!r}")
        with Sim(binary, "--catalogue", f.name) as sim:
            b = pick(sim, region="EUX")
            c = FusClient(sim, "legacy")
            c.generate_nonce()
            a = c.inform(b["model"], "EUX", b["version"], extras=False)
            check(a.status() == "400", f"legacy EUX without DEVICE_AID_CODE & co: {a.status()}")
            a = c.inform(b["model"], "EUX", b["version"])
            check(a.status() == "200", f"legacy EUX with the extras: {a.status()}")
            s = FusClient(sim, "smart2")
            s.generate_nonce()
            check(s.inform(b["model"], "EUX", b["version"]).status() == "200", "smart2 EUX needs no extras")
            check(len(sim.get_json("/_sim/builds")["builds"]) == 1, "the file replaces the built-in catalogue")
    finally:
        os.unlink(f.name)
        os.unlink(bad.name)


@case
def content_md5(binary):
    import base64
    import hashlib
    for form in ("base64", "hex"):
        with Sim(binary, "--content-md5", form) as sim:
            c, info, f = authorised(sim, build=pick(sim, hosted=True, encryption="enc2"))
            status, h, body = c.download_request(f)
            digest = hashlib.md5(body).digest()
            want = base64.b64encode(digest).decode() if form == "base64" else digest.hex()
            check(status == 200 and h.get("Content-MD5") == want, f"Content-MD5 ({form}): {h.get('Content-MD5')}")
            # HEAD: the same headers, no body.
            conn = sim.conn()
            conn.request("HEAD", c.paths["download"] + "?file=" + f,
                         headers={"Authorization": c.authorization(c.nonce_header, smart2_signature(c.nonce_header))})
            r = conn.getresponse()
            r.read()
            check(r.status == 200 and int(r.headers["Content-Length"]) == info["size"], "HEAD")
    with Sim(binary) as sim:
        c, info, f = authorised(sim)
        status, h, _ = c.download_request(f, "bytes=0-15")
        check("Content-MD5" not in h, "Content-MD5 is off by default")


# ------------------------------------------------------------------------------ faults

@case
def fault_drop_after(binary):
    with Sim(binary, "--faults", "drop-after=64KiB*2") as sim:
        c, info, f = authorised(sim)
        for _ in range(2):
            expect_incomplete(lambda: c.download_request(f), "drop-after")
        status, _, body = c.download_request(f)
        check(status == 200 and len(body) == info["size"], "after two drops the download works")
        check(fired(sim, "drop-after") == 2, "drop-after fired twice")


@case
def fault_status(binary):
    with Sim(binary, "--faults", "status=503@download*2") as sim:
        c, info, f = authorised(sim)
        for _ in range(2):
            status, h, _ = c.download_request(f, "bytes=0-15")
            check(status == 503, f"status fault: HTTP {status}")
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 206, f"after the count: HTTP {status}")
        # Armed at run time, cleared before it fires.
        check(sim.control("POST", "/_sim/faults", "status=500@inform*5")[0] == 200, "arm")
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        check(c.inform(b["model"], b["region"], b["version"]).http_status == 500, "status=500@inform")
        check(sim.control("DELETE", "/_sim/faults")[0] == 200, "clear")
        check(c.inform(b["model"], b["region"], b["version"]).status() == "200", "cleared")
        check(fired(sim, "status") == 3, "status fired 3 times")
        check(sim.control("POST", "/_sim/faults", "status=200")[0] == 400, "a bad spec is refused")


@case
def fault_auth401(binary):
    with Sim(binary) as sim:
        c, info, f = authorised(sim)
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        sim.control("POST", "/_sim/faults", '{"spec": "auth401*3"}')
        check(c.inform(b["model"], b["region"], b["version"]).status() == "401", "auth401 on a POST")
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 401, f"auth401 on the GET: HTTP {status}")
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 401, f"auth401 #3: HTTP {status}")
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 206, f"after the burst: HTTP {status}")
        check(fired(sim, "auth401") == 3, "auth401 fired 3 times")


@case
def fault_firewall(binary):
    with Sim(binary, "--faults", "firewall@inform*1") as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        c = FusClient(sim, "smart2")
        c.generate_nonce()
        a = c.inform(b["model"], b["region"], b["version"])
        check(a.root is None and b"<html>" in a.body, "the firewall page is HTML, not XML")
        check(a.headers.get("Content-Type", "").startswith("text/html"), "firewall Content-Type")
        check(c.inform(b["model"], b["region"], b["version"]).status() == "200", "then XML again")


@case
def fault_slow_first_byte(binary):
    with Sim(binary, "--faults", "slow-first-byte=1500ms@fota*1") as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        t = time.monotonic()
        status, _ = fota(sim, b["region"], b["model"])
        slow = time.monotonic() - t
        t = time.monotonic()
        fota(sim, b["region"], b["model"])
        fast = time.monotonic() - t
        check(status == 200 and slow >= 1.4, f"slow first byte: {slow:.2f} s")
        check(fast < slow - 1.0, f"then fast again: {fast:.2f} s")


@case
def fault_truncate(binary):
    with Sim(binary, "--faults", "truncate@download*1,truncate@inform*1") as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        c = FusClient(sim, "smart2")
        c.generate_nonce()
        expect_incomplete(lambda: c.inform(b["model"], b["region"], b["version"]), "truncate@inform")
        c.conn = sim.conn()  # that connection was closed
        c2, info, f = authorised(sim)
        expect_incomplete(lambda: c2.download_request(f, "bytes=0-99999"), "truncate@download")
        status, _, body = c2.download_request(f, "bytes=0-99999")
        check(status == 206 and len(body) == 100000, "after truncate: whole body")
        check(fired(sim, "truncate") == 2, "truncate fired twice")


@case
def fault_bad_crc(binary):
    with Sim(binary, "--faults", "bad-crc*1") as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        c = FusClient(sim, "smart2")
        c.generate_nonce()
        bad = parse_inform(c.inform(b["model"], b["region"], b["version"]))
        good = parse_inform(c.inform(b["model"], b["region"], b["version"]))
        check(bad["crc"] != b["crc32"], "bad-crc: the announced CRC should be wrong")
        check(good["crc"] == b["announced_crc32"], "then right again")


@case
def fault_no_name(binary):
    with Sim(binary, "--faults", "no-name*1") as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        c = FusClient(sim, "smart2")
        c.generate_nonce()
        bad = parse_inform(c.inform(b["model"], b["region"], b["version"]))
        good = parse_inform(c.inform(b["model"], b["region"], b["version"]))
        check(bad["name"] == "", "no-name: a success answer without BINARY_NAME")
        check(good["name"] == b["binary_name"], "then the name again")


@case
def fault_max_conns(binary):
    with Sim(binary, "--faults", "max-conns=2*1") as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        c, info, f = authorised(sim, build=b)
        check(info["size"] > 16 * 1024 * 1024, "needs a build bigger than the socket buffers")
        auth = c.authorization(c.nonce_header, smart2_signature(c.nonce_header))
        held = []
        for _ in range(2):  # two downloads that stay in flight: nobody reads their bodies
            s = socket.create_connection(("127.0.0.1", sim.port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(f"GET {c.paths['download']}?file={f} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n"
                      .encode())
            check(s.recv(12).startswith(b"HTTP/1.1 200"), "held download started")
            held.append(s)
        status, h, _ = c.download_request(f, "bytes=0-15")
        check(status == 429 and h.get("Retry-After"), f"third connection: HTTP {status} (want 429)")
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 206, f"after the count: HTTP {status}")
        sim.control("POST", "/_sim/faults", "max-conns=2")  # unlimited count until cleared
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 429, f"re-armed: HTTP {status}")
        sim.control("DELETE", "/_sim/faults")
        status, _, _ = c.download_request(f, "bytes=0-15")
        check(status == 206, f"cleared: HTTP {status}")
        for s in held:
            s.close()
        # The slots come back once the held downloads end.
        sim.control("POST", "/_sim/faults", "max-conns=1")
        deadline = time.monotonic() + 10
        while True:
            status, _, _ = c.download_request(f, "bytes=0-15")
            if status == 206 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        check(status == 206, "slots released after the connections closed")


@case
def throttle(binary):
    rate = 4_000_000
    with Sim(binary, "--throttle-bps", str(rate)) as sim:
        c, info, f = authorised(sim)
        n = 6_000_000
        t = time.monotonic()
        status, _, body = c.download_request(f, f"bytes=0-{n - 1}")
        elapsed = time.monotonic() - t
        check(status == 206 and len(body) == n, "throttled range")
        # Never faster than the rate (one small burst allowed); slower only by scheduling noise.
        check(elapsed >= n / rate * 0.9, f"throttle not applied: {n / elapsed / 1e6:.1f} MB/s")
        check(elapsed <= n / rate * 1.5, f"throttle far too slow: {n / elapsed / 1e6:.1f} MB/s")
        check(sim.control("POST", "/_sim/throttle", '{"bps": 0}')[0] == 200, "throttle off")
        t = time.monotonic()
        c.download_request(f, f"bytes=0-{n - 1}")
        check(time.monotonic() - t < elapsed / 2, "unthrottled at run time")


@case
def stats(binary):
    with Sim(binary) as sim:
        c, info, f = authorised(sim)
        c.download_request(f)
        c.download_request(f, "bytes=0-9")
        s = sim.get_json("/_sim/stats")
        build = s["builds"][info["name"]]
        check(build["downloads"] == 2 and build["completed"] == 2, f"downloads per build: {build}")
        check(build["bytes_served"] == info["size"] + 10, f"bytes served: {build}")
        route = s["routes"]["NF_SmartDownloadBinaryForMass.do"]
        check(route["http"].get("200") == 1 and route["http"].get("206") == 1, f"per status: {route}")
        check(s["routes"]["NF_SmartDownloadBinaryInform.do"]["fus"].get("200") == 1, "fus status counts")
        check(s["sessions_created"] == 1, "sessions")
        kinds = s["kinds"]
        check(kinds["download"]["requests"] == 2 and kinds["nonce"]["requests"] == 1
              and kinds["inform"]["requests"] == 1 and kinds["init"]["requests"] == 1,
              f"requests per kind: {kinds}")
        check(s["strict"] is True and s["strict_refusals"]["init_not_informed"] == 0, "strict stats")
        check(sim.control("POST", "/_sim/reset-stats")[0] == 200, "reset")
        check(sim.get_json("/_sim/stats")["builds"] == {}, "reset clears builds")


# ------------------------------------------------------------- faults of issues 11 and 12

@case
def fault_reset(binary):
    with Sim(binary, "--faults", "reset@inform*1,reset@download+1*1") as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        c = FusClient(sim, "smart2")
        c.generate_nonce()
        expect_incomplete(lambda: c.inform(b["model"], b["region"], b["version"]), "reset@inform")
        c.conn = sim.conn()
        check(c.inform(b["model"], b["region"], b["version"]).status() == "200", "inform after reset")
        c2, info, f = authorised(sim)
        status, _, _ = c2.download_request(f, "bytes=0-15")  # the +1: this one passes
        check(status == 206, f"first GET: {status}")
        expect_incomplete(lambda: c2.download_request(f, "bytes=0-15"), "reset@download")
        status, _, _ = c2.download_request(f, "bytes=0-15")
        check(status == 206, f"GET after reset: {status}")
        s = sim.get_json("/_sim/stats")
        check(s["faults_fired"]["reset"] == 2, "reset fired twice")
        check(s["kinds"]["inform"]["http"].get("reset") == 1, f"reset counted: {s['kinds']['inform']}")


@case
def fault_metadata_answers(binary):
    """no-nonce, no-crc, signed-crc, init-body: odd answers the working clients get through."""
    with Sim(binary, "--faults", "no-nonce@nonce*1,no-crc*1,signed-crc*1,init-body=text*1") as sim:
        b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
        c = FusClient(sim, "smart2")
        a = c.post(c.paths["nonce"], "", auth=c.authorization("", ""))
        check(a.http_status == 200 and a.status() == "200" and "NONCE" not in a.headers,
              "no-nonce@nonce: the answer should have no NONCE")
        c.generate_nonce()  # a new session, with a nonce this time
        a = c.inform(b["model"], b["region"], b["version"])
        check(a.status() == "200" and a.put("BINARY_CRC") is None, "no-crc: BINARY_CRC present")
        a = c.inform(b["model"], b["region"], b["version"])
        crc = int(a.put("BINARY_CRC"))
        check(crc == b["announced_crc32"] - (1 << 32 if b["announced_crc32"] >= 1 << 31 else 0),
              f"signed-crc: {crc} for {b['announced_crc32']}")
        info = parse_inform(a)
        a = c.init_for_mass(info["name"], served_version=info["served"], region=b["region"],
                            model_type=info["model_type"])
        check(a.http_status == 200 and a.body == b"OK", f"init-body=text: {a.body[:40]!r}")
        status, _, body = c.download_request(info["path"] + info["name"], "bytes=0-15")
        check(status == 206 and len(body) == 16, f"authorised after a text InitForMass body: {status}")
        for name in ("no-nonce", "no-crc", "signed-crc", "init-body"):
            check(fired(sim, name) == 1, f"{name} fired once")


@case
def fault_ranges(binary):
    with Sim(binary, "--faults", "range-200*1,bad-content-range*1") as sim:
        c, info, f = authorised(sim)
        status, headers, body = c.download_request(f, "bytes=100-199")
        check(status == 200 and len(body) == info["size"] and "Content-Range" not in headers,
              f"range-200: {status}, {len(body)} bytes")
        whole = body
        status, headers, body = c.download_request(f, "bytes=100-199")
        check(status == 206 and headers["Content-Range"] == f"bytes 116-215/{info['size']}",
              f"bad-content-range: {status} {headers.get('Content-Range')}")
        check(body == whole[116:216], "bad-content-range: bytes agree with the header")
        status, headers, body = c.download_request(f, "bytes=100-199")
        check(status == 206 and body == whole[100:200], "both spent: the asked range")


@case
def fault_trickle(binary):
    rate, after = 256 * 1024, 1 << 20
    with Sim(binary, "--faults", f"trickle={rate}:{after}@download+1*1") as sim:
        c, info, f = authorised(sim)
        n = 2 << 20
        t = time.monotonic()
        status, _, fast = c.download_request(f, f"bytes=0-{n - 1}")  # the +1: full speed
        quick = time.monotonic() - t
        t = time.monotonic()
        status, _, slow = c.download_request(f, f"bytes=0-{n - 1}")
        elapsed = time.monotonic() - t
        check(status == 206 and slow == fast, "trickled body differs")
        want = (n - after) / rate  # 4 s
        print(f"trickle: {elapsed:.2f} s (want ~{want:.1f} s); unfaulted {quick:.3f} s")
        check(elapsed >= want * 0.85, f"trickle too fast: {elapsed:.2f} s")
        check(elapsed <= want * 3, f"trickle far too slow: {elapsed:.2f} s")
        check(fired(sim, "trickle") == 1, "trickle fired once")


@case
def fault_stall(binary):
    after = 1 << 20
    with Sim(binary, "--faults", f"stall={after}@download+1*1") as sim:
        c, info, f = authorised(sim)
        status, _, body = c.download_request(f, "bytes=0-2097151")  # the +1: passes
        check(status == 206 and len(body) == 2 << 20, "first GET whole")
        conn = sim.conn(timeout=1.5)
        nh = c.nonce_header
        conn.request("GET", c.paths["download"] + "?file=" + f,
                     headers={"Authorization": c.authorization(nh, smart2_signature(nh)),
                              "Range": "bytes=0-2097151"})
        r = conn.getresponse()
        check(r.status == 206 and r.headers["Content-Length"] == str(2 << 20), "stall: headers")
        got = r.read(after)
        check(got == body[:after], "stall: the bytes before it")
        t = time.monotonic()
        try:
            r.read(1)
            raise Failure("stall: a byte came after AFTER")
        except (TimeoutError, socket.timeout):
            pass
        check(time.monotonic() - t >= 1.4, "stall: the read should have timed out, not ended")
        conn.close()
        status, _, again = c.download_request(f, "bytes=0-2097151")
        check(status == 206 and again == body, "GET after the stall")
        deadline = time.monotonic() + 10
        while sim.get_json("/_sim/stats")["downloads"]["aborted"] < 1:
            check(time.monotonic() < deadline, "the stalled download was never counted aborted")
            time.sleep(0.05)


# ---------------------------------------------------------------- strict session conduct

@case
def strict_session(binary):
    for flags, strict in (((), True), (("--lenient",), False)):
        with Sim(binary, *flags) as sim:
            b = pick(sim, hosted=True, beta=False, answers_with_newest=False)
            for dialect in ("smart2", "legacy"):
                c = FusClient(sim, dialect)
                c.generate_nonce()  # no BinaryInform in this session
                a = c.init_for_mass(b["binary_name"])
                want = "400" if strict else "200"
                check(a.status() == want, f"{flags} {dialect} InitForMass without BinaryInform: "
                                          f"{a.status()} (want {want})")
                status, _, _ = c.download_request(b["model_path"] + b["binary_name"], "bytes=0-15")
                check(status == (403 if strict else 206), f"{flags} {dialect} GET: {status}")
                # Re-auth as samloader-rs and asgard: GenerateNonce with the cookie, InitForMass.
                c, info, f = authorised(sim, dialect)
                jar = c.cookie
                c.generate_nonce()
                check(c.cookie == jar, "GenerateNonce with a live cookie should keep the session")
                a = c.init_for_mass(info["name"], served_version=info["served"], region=b["region"],
                                    model_type=info["model_type"])
                check(a.status() == "200", f"{dialect} InitForMass after re-auth: {a.status()}")
                status, _, _ = c.download_request(f, "bytes=0-15")
                check(status == 206, f"{dialect} GET after re-auth: {status}")
            # SmartHistory: with a session (as every smart2 client), and without.
            a = smart_history(sim, b["model"], b["region"])
            check(a.http_status == 200, f"SmartHistory in a session: {a.http_status}")
            a = smart_history(sim, b["model"], b["region"], session=False)
            check(a.http_status == (401 if strict else 200), f"{flags} SmartHistory without: {a.http_status}")
            # FOTA: the clients' User-Agents; SMART 2.0 is refused.
            for ua, ok in (("Kies2.0_FUS", True), ("curl/7.88.1", True), ("python-requests/2.28.1", True),
                           ("SMART 2.0", not strict), ("Python-urllib/3.11", not strict)):
                status, body = fota(sim, b["region"], b["model"], user_agent=ua)
                check(status == (200 if ok else 400), f"{flags} FOTA with {ua!r}: {status}")
            s = sim.get_json("/_sim/stats")
            refusals = s["strict_refusals"]
            want = {"init_not_informed": 2, "history_without_session": 1, "fota_user_agent": 2} \
                if strict else {"init_not_informed": 0, "history_without_session": 0, "fota_user_agent": 0}
            check(refusals == want, f"{flags} strict refusals {refusals} != {want}")
            check(s["sessions_reused"] == 2, f"sessions_reused {s['sessions_reused']}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fus-sim")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("case", nargs="*")
    args = ap.parse_args()
    if args.list:
        print("\n".join(CASES))
        return 0
    failed = 0
    for name in args.case or list(CASES):
        try:
            CASES[name](args.fus_sim)
            print(f"{name}: OK")
        except Failure as e:
            print(f"{name}: FAIL: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
