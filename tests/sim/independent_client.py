#!/usr/bin/env python3
"""An independent FUS client: drives fus-sim the way Samsung's servers are driven, sharing no
code with the project (Python 3 standard library + python3-cryptography only), written from
../shared/protocol.md. It is the acceptance test of fus-sim: if this client gets a firmware
whose SHA-256 matches, the simulator checks and serves what Samsung does.

usage: independent_client.py --fus-sim PATH --dialect smart2|legacy
"""
import argparse
import base64
import hashlib
import http.client
import io
import os
import random
import re
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
import zipfile
import zlib
import json

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

LEGACY_KEYS = {
    "2020": ("hqzdurufm2c8mf6bsjezu1qgveouv7c7", "w13r4cvf4hctaujv"),
    "2023": ("vicopx7dqu06emacgpnpy8j8zwhduwlh", "9u7qab84rpc16gvk"),
    "2026": ("jqw2zntssasudk3zuwwx4tnqz5h3b6i4", "ifzg4ovyl3cyl3a5"),
}
SMART2_KEY = bytes.fromhex("422e73733617ae2b198940fd4e32b0a5")
GOOD_IMEI = "490154203237518"  # a valid Luhn IMEI


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


# ---------------------------------------------------------------- crypto, from protocol.md

def aes_cbc_encrypt(key, iv, data):
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return e.update(data) + e.finalize()


def aes_cbc_decrypt(key, iv, data):
    d = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return d.update(data) + d.finalize()


def pkcs7_pad(data):
    n = 16 - len(data) % 16
    return data + bytes([n]) * n


def pkcs7_unpad(data):
    n = data[-1]
    check(1 <= n <= 16 and data[-n:] == bytes([n]) * n, "bad PKCS#7 padding")
    return data[:-n]


def legacy_decrypt_nonce(nonce_b64, keys):
    k1 = keys[0].encode()
    return pkcs7_unpad(aes_cbc_decrypt(k1, k1[:16], base64.b64decode(nonce_b64))).decode()


def legacy_signature(nonce, keys):
    k1, k2 = keys
    derived = "".join(k1[ord(c) % 16] for c in nonce[:16]) + k2
    dk = derived.encode()
    return base64.b64encode(aes_cbc_encrypt(dk, dk[:16], pkcs7_pad(nonce.encode()))).decode()


def smart2_signature(nonce):
    block = nonce.encode()[:16].ljust(16, b"0")
    e = Cipher(algorithms.AES(SMART2_KEY), modes.ECB()).encryptor()
    return (e.update(block) + e.finalize()).hex()


def logic_check(inp, nonce):
    return "".join(inp[ord(c) & 0xF] for c in nonce)


def md5hex(s):
    return hashlib.md5(s.encode()).hexdigest()


def history_signature(cn, model):
    return md5hex(md5hex("auth:" + cn + ":00000001") + ":FUS:" + md5hex("interface:" + model.upper()))


def ecb_decrypt(key, data):
    d = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    return d.update(data) + d.finalize()


# ---------------------------------------------------------------- fus-sim process

class Sim:
    def __init__(self, binary, *extra):
        self.dir = tempfile.mkdtemp(prefix="fus-sim-test-")
        self.port_file = os.path.join(self.dir, "port")
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--port-file", self.port_file, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        self.port = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure("fus-sim exited early: " + self.proc.stderr.read().decode())
            try:
                with open(self.port_file) as f:
                    text = f.read()
                if text.endswith("\n"):
                    self.port = int(text)
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.02)
        check(self.port, "fus-sim did not write its port file in time")

    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get_json(self, path):
        c = self.conn()
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        check(r.status == 200, f"GET {path}: HTTP {r.status} {body[:200]!r}")
        return json.loads(body)

    def control(self, method, path, body=""):
        c = self.conn()
        c.request(method, path, body=body.encode())
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- XML

def fus_xml(put, get=None, session_header=False):
    x = "<FUSMsg><FUSHdr><ProtoVer>1.0</ProtoVer>"
    if session_header:
        x += "<SessionID>0</SessionID><MsgID>1</MsgID>"
    x += "</FUSHdr><FUSBody><Put>"
    for k, v in put:
        x += f"<{k}><Data>{v}</Data></{k}>"
    x += "</Put>"
    if get is not None:
        x += "<Get>" + "".join(f"<{k}><Data>{v}</Data></{k}>" for k, v in get) + "</Get>"
    return x + "</FUSBody></FUSMsg>"


def value_of(elem):
    """Tolerant: <Data>, <DATA> or text, stripped."""
    if elem is None:
        return None
    for child in elem:
        if child.tag in ("Data", "DATA"):
            return (child.text or "").strip()
    return (elem.text or "").strip()


class Answer:
    def __init__(self, status, headers, body):
        self.http_status = status
        self.headers = headers
        self.body = body
        self.root = None
        try:
            self.root = ET.fromstring(body)
        except ET.ParseError:
            pass

    def status(self):
        if self.root is None:
            return None
        s = self.root.find("FUSBody/Results/Status")
        return None if s is None else (s.text or "").strip()

    def put(self, name):
        return value_of(self.root.find("FUSBody/Put/" + name)) if self.root is not None else None

    def result(self, name):
        return value_of(self.root.find("FUSBody/Results/" + name)) if self.root is not None else None


# ---------------------------------------------------------------- the client

class FusClient:
    def __init__(self, sim, dialect, keys="2026", imei=GOOD_IMEI):
        self.sim = sim
        self.dialect = dialect
        self.keys = LEGACY_KEYS[keys] if isinstance(keys, str) else keys
        self.imei = imei
        self.conn = sim.conn()
        self.nonce_header = None  # newest NONCE as received
        self.nonce = None         # what signing and LOGIC_CHECK use
        self.cookie = None
        p = "NF_SmartDownload" if dialect == "smart2" else "NF_Download"
        self.paths = {
            "nonce": f"/{p}GenerateNonce.do",
            "inform": f"/{p}BinaryInform.do",
            "init": f"/{p}BinaryInitForMass.do",
            "download": f"/{p}BinaryForMass.do",
        }

    def user_agent(self):
        return "SMART 2.0" if self.dialect == "smart2" else "Kies2.0_FUS"

    def take_nonce(self, headers):
        n = headers.get("NONCE")
        if n:
            self.nonce_header = n
            self.nonce = legacy_decrypt_nonce(n, self.keys) if self.dialect == "legacy" else n

    def signature(self):
        if self.dialect == "legacy":
            return legacy_signature(self.nonce, self.keys)
        return smart2_signature(self.nonce)

    def authorization(self, nonce_value, signature):
        a = f'FUS nonce="{nonce_value}", signature="{signature}", nc="", type="", realm=""'
        if self.dialect == "legacy":
            a += ', newauth="1"'
        return a

    def post(self, path, body, auth=None, cookie=True):
        headers = {"User-Agent": self.user_agent(), "Content-Type": "application/xml"}
        if auth is None:
            auth = self.authorization("", self.signature() if self.nonce else "")
        headers["Authorization"] = auth
        if cookie and self.cookie:
            headers["Cookie"] = self.cookie
        self.conn.request("POST", path, body=body.encode(), headers=headers)
        r = self.conn.getresponse()
        data = r.read()
        self.take_nonce(r.headers)
        sc = r.headers.get("Set-Cookie")
        if sc:
            m = re.match(r"\s*(JSESSIONID=[^;]+)", sc)
            if m:
                self.cookie = m.group(1)
        return Answer(r.status, r.headers, data)

    def generate_nonce(self):
        a = self.post(self.paths["nonce"], "", auth=self.authorization("", ""))
        check(a.http_status == 200 and a.status() == "200", f"GenerateNonce: {a.http_status} {a.status()}")
        check(self.nonce and self.cookie, "GenerateNonce: no NONCE header or JSESSIONID cookie")
        return a

    def inform_body(self, model, region, version, logic=None, imei=None, extras=True):
        lc = logic if logic is not None else logic_check(version, self.nonce)
        if self.dialect == "legacy":
            put = [("ACCESS_MODE", "2"), ("BINARY_NATURE", "1"), ("CLIENT_PRODUCT", "Smart Switch"),
                   ("CLIENT_VERSION", "4.3.23123_1"), ("DEVICE_FW_VERSION", version),
                   ("DEVICE_LOCAL_CODE", region), ("DEVICE_MODEL_NAME", model),
                   ("DEVICE_IMEI_PUSH", self.imei if imei is None else imei),
                   ("DEVICE_PLATFORM", "Android"), ("UPGRADE_VARIABLE", "0"), ("OBEX_SUPPORT", "0"),
                   ("LOGIC_CHECK", lc)]
            if extras and region == "EUX":
                put += [("DEVICE_AID_CODE", "EUX"), ("DEVICE_CC_CODE", "DE"), ("MCC_NUM", "262"),
                        ("MNC_NUM", "01")]
            return fus_xml(put)
        put = [("ACCESS_MODE", "1"), ("BINARY_NATURE", "1"), ("REQUEST_TYPE", "2"),
               ("LOGIC_CHECK", lc), ("BINARY_SW_VERSION", version),
               ("BINARY_LOCAL_CODE", region), ("BINARY_MODEL_NAME", model)]
        return fus_xml([("CmdID", "1")] + put, get=[("CmdID", "2"), ("BINARY_SW_VERSION", "")],
                       session_header=True)

    def inform(self, model, region, version, **kw):
        return self.post(self.paths["inform"], self.inform_body(model, region, version, **kw))

    def init_body(self, name, served_version="", region="", model_type="", logic=None):
        if self.dialect == "legacy":
            inp = name.split(".")[0][-16:]
            lc = logic if logic is not None else logic_check(inp, self.nonce)
            return fus_xml([("BINARY_FILE_NAME", name), ("LOGIC_CHECK", lc)])
        inp = name[len(name) - 25:len(name) - 9]
        lc = logic if logic is not None else logic_check(inp, self.nonce)
        return fus_xml([("CmdID", "1"), ("BINARY_NAME", name), ("BINARY_SW_VERSION", served_version),
                        ("DEVICE_LOCAL_CODE", region), ("DEVICE_MODEL_TYPE", model_type),
                        ("LOGIC_CHECK", lc)], session_header=True)

    def init_for_mass(self, name, **kw):
        return self.post(self.paths["init"], self.init_body(name, **kw))

    def download_request(self, file_param, range_header=None, nonce_header=None, signature=None,
                         conn=None):
        """One GET, no cookie (as most clients); returns (status, headers, body)."""
        nh = nonce_header or self.nonce_header
        if signature is None:
            plain = legacy_decrypt_nonce(nh, self.keys) if self.dialect == "legacy" else nh
            signature = legacy_signature(plain, self.keys) if self.dialect == "legacy" else smart2_signature(plain)
        headers = {"User-Agent": self.user_agent(), "Authorization": self.authorization(nh, signature),
                   "Cache-Control": "no-cache"}
        if range_header:
            headers["Range"] = range_header
        c = conn or self.sim.conn()
        c.request("GET", self.paths["download"] + "?file=" + file_param, headers=headers)
        r = c.getresponse()
        body = r.read()
        return r.status, r.headers, body


def parse_inform(a):
    check(a.http_status == 200, f"inform: HTTP {a.http_status}")
    check(a.status() == "200", f"inform: Status {a.status()}")
    served = a.put("BINARY_SW_VERSION") or a.result("LATEST_FW_VERSION") or a.result("BINARY_SW_VERSION")
    info = {
        "served": served,
        "name": a.put("BINARY_NAME"),
        "path": a.put("MODEL_PATH"),
        "size": int(a.put("BINARY_BYTE_SIZE")),
        "crc": int(a.put("BINARY_CRC")),
        "logic_value": a.put("LOGIC_VALUE_FACTORY") or a.put("LOGIC_VALUE_HOME"),
        "model_type": a.put("DEVICE_MODEL_TYPE"),
        "files": [a.put(k) for k in ("DEVICE_BOOT_FILE", "DEVICE_PDA_CODE1_FILE", "DEVICE_PHONE_FONT_FILE",
                                     "DEVICE_CSC_FILE", "DEVICE_CSC_HOME_FILE")],
    }
    check(info["size"] // 1024 == int(a.put("BINARY_SIZE")), "BINARY_SIZE is not BINARY_BYTE_SIZE in KiB")
    return info


def parallel_ranged_download(client, file_param, total, parts=4):
    """Downloads with `parts` concurrent ranged GETs on separate connections, all reusing one
    nonce (as real clients do); the last range is open-ended (bytes=a-)."""
    step = (total + parts - 1) // parts
    ranges = [(i * step, min(total, (i + 1) * step) - 1) for i in range(parts) if i * step < total]
    chunks = [None] * len(ranges)
    errors = []
    nonce = client.nonce_header

    def fetch(i):
        try:
            a, b = ranges[i]
            header = f"bytes={a}-{b}" if i + 1 < len(ranges) else f"bytes={a}-"
            status, headers, body = client.download_request(file_param, header, nonce_header=nonce)
            check(status == 206, f"range {header}: HTTP {status}")
            check(headers.get("Content-Range") == f"bytes {a}-{b}/{total}",
                  f"range {header}: Content-Range {headers.get('Content-Range')}")
            check(len(body) == b - a + 1, f"range {header}: {len(body)} bytes")
            chunks[i] = body
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(len(ranges))]
    for t in threads:
        t.start()
        time.sleep(0.01)  # staggered starts, like real clients
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return b"".join(chunks)


def builds_by_name(sim):
    return {b["binary_name"]: b for b in sim.get_json("/_sim/builds")["builds"]}


def fetch_and_verify(client, sim, model, region, version, enc, log):
    """The full flow for one build: BinaryInform, InitForMass, ranged download, CRC, decrypt,
    SHA-256 against the simulator's expectation, zip members against the inform answer."""
    info = parse_inform(client.inform(model, region, version))
    log(f"  inform {model}/{region} {version} -> {info['served']} {info['name']} {info['size']} bytes")
    check(client.init_for_mass(info["name"], served_version=info["served"], region=region,
                               model_type=info["model_type"]).status() == "200", "InitForMass refused")
    file_param = info["path"] + info["name"]
    enc_bytes = parallel_ranged_download(client, file_param, info["size"])
    check(len(enc_bytes) == info["size"], "assembled size differs from BINARY_BYTE_SIZE")
    check(zlib.crc32(enc_bytes) == info["crc"], "CRC-32 of the encrypted file differs from BINARY_CRC")
    # Range forms: suffix and a single byte must agree with the assembled file.
    status, headers, tail = client.download_request(file_param, "bytes=-100")
    check(status == 206 and tail == enc_bytes[-100:], f"suffix range: HTTP {status}")
    status, headers, one = client.download_request(file_param, "bytes=5-5")
    check(status == 206 and one == enc_bytes[5:6], "single-byte range")

    if enc == "enc4":
        key = hashlib.md5(logic_check(info["served"], info["logic_value"]).encode()).digest()
    else:
        key = hashlib.md5(f"{region}:{model}:{info['served']}".encode()).digest()
    plain = pkcs7_unpad(ecb_decrypt(key, enc_bytes))
    expected = sim.get_json(f"/_sim/builds/{info['name']}/sha256")
    check(hashlib.sha256(plain).hexdigest() == expected["sha256"], "decrypted SHA-256 differs")
    check(len(plain) == expected["plain_size"], "decrypted size differs")
    z = zipfile.ZipFile(io.BytesIO(plain))
    names = z.namelist()
    for f in info["files"]:
        check(f in names, f"zip lacks announced member {f}")
    check(z.testzip() is None, "a zip member fails its CRC")
    log(f"  decrypted {len(plain)} bytes, SHA-256 ok, members {len(names)}")
    return info


def smart_history(sim, model, region, signature=None, cn=None, session=True):
    """SmartHistory as samloader-rs, asgard and Bifrost send it: in a session opened by
    GenerateNonce (its JSESSIONID cookie), signed with a client nonce. session=False sends it
    without one (what no working client does)."""
    cn = cn or "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(16))
    sig = signature or history_signature(cn, model)
    auth = f'FUS nonce="{cn}", signature="{sig}", nc="00000001", type="auth", realm="interface"'
    body = fus_xml([("CmdID", "1"), ("ACCESS_MODE", "1"), ("BINARY_LOCAL_CODE", region),
                    ("BINARY_MODEL_NAME", model)], session_header=True)
    headers = {"Authorization": auth, "User-Agent": "SMART 2.0"}
    if session:
        opener = FusClient(sim, "smart2")
        opener.generate_nonce()
        headers["Cookie"] = opener.cookie
    c = sim.conn()
    c.request("POST", "/SmartHistory.do", body=body.encode(), headers=headers)
    r = c.getresponse()
    return Answer(r.status, r.headers, r.read())


def history_versions(a):
    merged = {}
    for bi in a.root.iter("BINARY_INFO"):
        v = value_of(bi.find("BINARY_SW_VERSION"))
        seq = int(value_of(bi.find("BINARY_SEQUENCE")))
        beta = value_of(bi.find("BINARY_INDEX")) == "90" or value_of(bi.find("BINARY_OS_NAME")) == "Z(Android 99)"
        merged[v] = (seq, beta)
    return [(v, beta) for v, (seq, beta) in sorted(merged.items(), key=lambda kv: -kv[1][0])]


def fota(sim, region, model, user_agent="Kies2.0_FUS"):
    c = sim.conn()
    c.request("GET", f"/firmware/{region}/{model}/version.xml", headers={"User-Agent": user_agent})
    r = c.getresponse()
    return r.status, r.read()


def four_part(v):
    parts = v.split("/")
    if len(parts) == 3:
        if not parts[2]:
            parts[2] = parts[0]
        parts.append(parts[0])
    return "/".join(parts)


def run_flow(binary, dialect, log):
    extra = ["--require-imei"] if dialect == "legacy" else []
    with Sim(binary, *extra) as sim:
        builds = list(builds_by_name(sim).values())
        small = [b for b in builds if b["plain_size"] <= 64 * 1024 * 1024]
        # 1. An enc4 build asked by an old version that Samsung answers with the newest build:
        #    the client must use the served version (key, InitForMass), never the asked one.
        trap = [b for b in small if b["answers_with_newest"] and b["encryption"] == "enc4"
                and b["served_version"] and b["served_version"] != b["version"]]
        plain_enc4 = [b for b in small if b["hosted"] and not b["beta"] and not b["answers_with_newest"]
                      and b["encryption"] == "enc4"]
        enc2 = [b for b in small if b["hosted"] and b["encryption"] == "enc2"]
        check(trap and plain_enc4 and enc2, "catalogue lacks the builds this test needs")
        if dialect == "smart2":
            cases = [(trap[0], "enc4"), (enc2[0], "enc2")]
        else:
            cases = [(plain_enc4[0], "enc4"), (enc2[0], "enc2")]

        client = FusClient(sim, dialect)
        client.generate_nonce()
        log(f"{dialect}: session {client.cookie}, nonce {client.nonce_header[:12]}...")
        if dialect == "legacy":
            b = cases[0][0]
            a = client.inform(b["model"], b["region"], b["version"], imei="")
            check(a.status() == "408", f"legacy without IMEI: Status {a.status()} (want 408)")
            log("  no IMEI -> 408")
        for b, enc in cases:
            info = fetch_and_verify(client, sim, b["model"], b["region"], b["version"], enc, log)
            if b["answers_with_newest"]:
                check(info["served"] == b["served_version"] and info["served"] != b["version"],
                      "served version should be the newest build's")

        # SmartHistory with its md5 signature: every version of the pair, newest first.
        b = trap[0]
        a = smart_history(sim, b["model"].lower(), b["region"])
        check(a.http_status == 200 and a.status() == "", f"SmartHistory: {a.http_status} {a.status()!r}")
        versions = history_versions(a)
        want = [x["version"] for x in builds if x["model"] == b["model"] and x["region"] == b["region"]]
        check([v for v, _ in versions] == want, f"SmartHistory order {versions} != {want}")
        betas = {x["version"] for x in builds if x["model"] == b["model"] and x["beta"]}
        check({v for v, beta in versions if beta} == betas, "SmartHistory beta flags")
        bad = smart_history(sim, b["model"], b["region"], signature="0" * 32)
        check(bad.status() == "401", f"SmartHistory with a wrong signature: Status {bad.status()}")
        log(f"  SmartHistory: {len(versions)} versions, wrong signature -> 401")

        # FOTA version.xml: latest is the newest hosted stable build, 3-part.
        status, body = fota(sim, b["region"], b["model"])
        check(status == 200, f"FOTA: HTTP {status}")
        root = ET.fromstring(body)
        latest = root.find("firmware/version/latest")
        check(four_part(latest.text) == b["served_version"], f"FOTA latest {latest.text}")
        check(latest.get("o", "").isdigit(), "FOTA latest without o=")
        for v in root.iter("value"):
            check(v.get("rcount") and v.get("fwsize"), "FOTA upgrade value without rcount/fwsize")
        status, body = fota(sim, "ZZZ", "SM-NONE")
        check(status == 403 and b"AccessDenied" in body, f"FOTA unknown pair: HTTP {status}")
        log("  FOTA version.xml ok, unknown pair -> 403 AccessDenied")

        stats = sim.get_json("/_sim/stats")
        check(stats["sessions_created"] >= 1, "stats: no session counted")
        for b, _ in cases:
            served = b["binary_name"] if not b["answers_with_newest"] else \
                [x for x in builds if x["version"] == b["served_version"]][0]["binary_name"]
            check(stats["builds"][served]["bytes_served"] >= builds_by_name(sim)[served]["encrypted_size"],
                  "stats: bytes served per build")
    log(f"{dialect}: OK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fus-sim", required=True)
    ap.add_argument("--dialect", choices=["smart2", "legacy"], required=True)
    args = ap.parse_args()
    try:
        run_flow(args.fus_sim, args.dialect, print)
    except Failure as e:
        print("FAIL:", e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
