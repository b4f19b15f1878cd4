#!/usr/bin/env python3
"""fus-sim's /_sim/builds/{name}/members listing against independent tools.

Downloads small builds from a real fus-sim over FUS (the independent client's code: smart2
session, BinaryInform, InitForMass, ranged GETs, ECB decryption), unzips them with Python's
zipfile, extracts each .tar.md5 member with GNU `tar -x`, decodes its .lz4 entries with the
`lz4` CLI, and checks the listing: entry names, sizes and offsets (in the member and in the
plain zip), the MD5 line (`md5sum` of the tar part), the SHA-256 of every entry and decoded
image, the bad-input build (a member that is not a tar, a corrupt LZ4 frame that `lz4 -d`
refuses), and the per-build upstream byte counter.

Usage: members_endpoint.py --fus-sim PATH
"""
import argparse
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from independent_client import (  # noqa: E402 - the sibling script's client, no project code
    Failure, FusClient, Sim, check, ecb_decrypt, logic_check, parallel_ranged_download,
    parse_inform, pkcs7_unpad)

BUILDS = [
    ("SM-G990B", "BTU", "G990BXXSDFYE1/G990BOXMDFYE1/G990BXXSDFYE1/G990BXXSDFYE1"),  # AP deflated
    ("SM-A556E", "INS", "A556EXXU1AXB1/A556EODM1AXB1/A556EXXU1AXB1/A556EXXU1AXB1"),  # bad input
    ("SM-A207F", "SER", "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2"),  # 24 MiB
]


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def download_plain(client, model, region, version):
    info = parse_inform(client.inform(model, region, version))
    check(client.init_for_mass(info["name"], served_version=info["served"], region=region,
                               model_type=info["model_type"]).status() == "200", "InitForMass refused")
    enc = parallel_ranged_download(client, info["path"] + info["name"], info["size"])
    key = hashlib.md5(logic_check(info["served"], info["logic_value"]).encode()).digest()
    return info, pkcs7_unpad(ecb_decrypt(key, enc))


def check_member(listing_member, data, plain, work, log):
    m = listing_member
    name = m["name"]
    check(len(data) == m["size"], f"{name}: size {len(data)} != {m['size']}")
    if not m["deflated"]:
        check(plain[m["data_offset"]:m["data_offset"] + m["size"]] == data, f"{name}: data_offset")
    path = os.path.join(work, "member")
    with open(path, "wb") as f:
        f.write(data)
    out = os.path.join(work, "x")
    subprocess.run(["rm", "-rf", out], check=True)
    os.makedirs(out)
    tar = subprocess.run(["tar", "-x", "-f", path, "-C", out], capture_output=True)
    if not m["tar"]:
        check(tar.returncode != 0, f"{name}: GNU tar extracted a member listed as not a tar")
        check(m["entries"] == [] and m["md5"] is None and m["kind"] is None, f"{name}: non-tar fields")
        log(f"  {name}: not a tar (tar -x refuses it), listed so")
        return
    check(tar.returncode == 0, f"{name}: tar -x failed: {tar.stderr[-300:]!r}")
    # The .tar.md5 line: md5sum of the tar part, then two spaces and the tar's name.
    md5 = subprocess.run(["md5sum"], input=data[:m["tar_size"]], capture_output=True,
                         check=True).stdout.decode()[:32]
    check(md5 == m["md5"], f"{name}: md5sum {md5} != listed {m['md5']}")
    check(data[m["tar_size"]:] == f"{md5}  {name[:-4]}\n".encode(), f"{name}: MD5 line")
    names = subprocess.run(["tar", "-t", "-f", path], capture_output=True, check=True,
                           text=True).stdout.split()
    check(names == [e["name"] for e in m["entries"]], f"{name}: tar -t {names}")
    for e in m["entries"]:
        with open(os.path.join(out, e["name"]), "rb") as f:
            body = f.read()
        what = f"{name}/{e['name']}"
        check(len(body) == e["size"], f"{what}: size")
        check(data[e["offset"]:e["offset"] + e["size"]] == body, f"{what}: offset in the member")
        if e["zip_offset"] is not None:
            check(plain[e["zip_offset"]:e["zip_offset"] + e["size"]] == body, f"{what}: zip_offset")
        else:
            check(m["deflated"], f"{what}: zip_offset null in a stored member")
        check(sha256(body) == e["sha256"], f"{what}: sha256")
        if not e["lz4"]:
            check("decoded_sha256" not in e, f"{what}: a plain entry with a decoded digest")
            continue
        lz = subprocess.run(["lz4", "-q", "-d", "-c", os.path.join(out, e["name"])],
                            capture_output=True)
        if e["corrupt"]:
            check(lz.returncode != 0, f"{what}: lz4 -d accepted the corrupt frame")
            check(e["decoded_sha256"] is None, f"{what}: corrupt, yet a decoded digest")
            log(f"  {what}: corrupt, lz4 -d refuses it ({lz.stderr.decode().strip()[:60]})")
            continue
        check(lz.returncode == 0, f"{what}: lz4 -d failed")
        check(len(lz.stdout) == e["decoded_size"], f"{what}: decoded size")
        check(sha256(lz.stdout) == e["decoded_sha256"], f"{what}: decoded sha256")
    log(f"  {name[:40]}…: {len(m['entries'])} entries, md5 and digests agree")


def run(binary, log):
    with Sim(binary) as sim, tempfile.TemporaryDirectory(prefix="sim-members-") as work:
        # A listing without digests has them null; an unknown build is a 404.
        status, body = sim.control("GET", "/_sim/builds/NOPE_1_2_3_fac.zip.enc4/members")
        check(status == 404 and "error" in body, f"unknown build: HTTP {status}")
        client = FusClient(sim, "smart2")
        client.generate_nonce()
        for model, region, version in BUILDS:
            sim.control("POST", "/_sim/reset-stats")
            info, plain = download_plain(client, model, region, version)
            name = info["name"]
            served = sim.get_json("/_sim/stats")["builds"][name]["bytes_served"]
            check(served == info["size"], f"{name}: bytes_served {served} != {info['size']}")
            bare = sim.get_json(f"/_sim/builds/{name}/members")
            check(all(e["sha256"] is None for m in bare["members"] for e in m["entries"]),
                  "digests without ?sha256")
            listing = sim.get_json(f"/_sim/builds/{name}/members?sha256=1")
            check(listing["plain_size"] == len(plain), "plain_size")
            z = zipfile.ZipFile(io.BytesIO(plain))
            check([i.filename for i in z.infolist()] == [m["name"] for m in listing["members"]],
                  f"{name}: member order")
            log(f"{model}/{region}: {len(plain)} bytes, {len(listing['members'])} members")
            for m, zi in zip(listing["members"], z.infolist()):
                check(m["deflated"] == (zi.compress_type == zipfile.ZIP_DEFLATED), f"{m['name']}: method")
                check(m["header_offset"] == zi.header_offset and m["crc32"] == zi.CRC,
                      f"{m['name']}: header offset, CRC")
                check_member(m, z.read(zi), plain, work, log)
            # One entry by name: the same digests as in the full listing.
            ap = [m for m in listing["members"] if m["kind"] == "AP"][0]
            boot = ap["entries"][0]
            one = sim.get_json(f"/_sim/builds/{name}/members?sha256=AP/{boot['name']}")
            one_boot = [m for m in one["members"] if m["kind"] == "AP"][0]["entries"][0]
            check(one_boot["sha256"] == boot["sha256"] and
                  one_boot.get("decoded_sha256") == boot.get("decoded_sha256"), "?sha256=AP/boot")
            check(one_boot["sha256"] is not None and
                  [m for m in one["members"] if m["kind"] == "CP"][0]["entries"][0]["sha256"] is None,
                  "?sha256=AP/ENTRY gives that entry's digests only")
        # The 20 GB build: its AP lists boot.img.lz4 (64 MiB decoded, content size), init_boot,
        # recovery without content size, super, a plain vbmeta.img; boot's digest by name.
        big = "SM-BIG00_2_20260105120000_b1g0b1g0b1_fac.zip.enc4"
        listing = sim.get_json(f"/_sim/builds/{big}/members?sha256=AP/boot.img.lz4")
        ap = {e["name"]: e for m in listing["members"] if m["kind"] == "AP" for e in m["entries"]}
        check(ap["boot.img.lz4"]["decoded_size"] == 64 << 20 and
              ap["boot.img.lz4"]["content_size_in_header"], "20 GB: boot.img.lz4")
        check(len(ap["boot.img.lz4"]["decoded_sha256"]) == 64, "20 GB: boot's decoded digest")
        check(not ap["recovery.img.lz4"]["content_size_in_header"], "20 GB: recovery without size")
        check(not ap["vbmeta.img"]["lz4"] and "init_boot.img.lz4" in ap and
              ap["super.img.lz4"]["size"] > 19 * 10**9, "20 GB: vbmeta.img, init_boot, super")
        check(ap["super.img.lz4"]["sha256"] is None, "20 GB: super's digest only when named")
        log(f"SM-BIG00: AP {sorted(ap)}; boot.img {ap['boot.img.lz4']['decoded_sha256'][:16]}…")
    log("OK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fus-sim", required=True)
    args = ap.parse_args()
    try:
        run(args.fus_sim, print)
    except Failure as e:
        print("FAIL:", e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
