#!/usr/bin/env python3
"""Independent check of a synthetic firmware file (shares no code with fusproxy).

  firmware_zipcheck.py enc KEY_HEX FILE   FILE is an encrypted firmware: decrypt it
      (python3-cryptography, AES-128-ECB, PKCS#7), then check the zip fully.
  firmware_zipcheck.py sparse FILE        FILE is a plain zip whose big stored members are
      holes: read the central directory, the deflated members (CRC-checked) and the
      first MiB of each stored member.

Prints one JSON object: the members as zipfile sees them, plus checksums.
"""
import hashlib
import io
import json
import sys
import zipfile
import zlib


def describe(z, full):
    members = []
    for info in z.infolist():
        entry = {
            "name": info.filename,
            "method": info.compress_type,
            "size": info.file_size,
            "compressed_size": info.compress_size,
            "crc": info.CRC,
            "header_offset": info.header_offset,
        }
        if full or info.compress_type == zipfile.ZIP_DEFLATED:
            data = z.read(info.filename)  # checks the CRC-32 against the headers
            entry["sha256"] = hashlib.sha256(data).hexdigest()
        else:
            with z.open(info) as f:
                entry["head_sha256"] = hashlib.sha256(f.read(1 << 20)).hexdigest()
        members.append(entry)
    return members


def main():
    mode = sys.argv[1]
    out = {}
    if mode == "enc":
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        key = bytes.fromhex(sys.argv[2])
        with open(sys.argv[3], "rb") as f:
            cipher = f.read()
        out["encrypted_crc32"] = zlib.crc32(cipher)
        out["encrypted_md5"] = hashlib.md5(cipher).hexdigest()
        d = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
        plain = d.update(cipher) + d.finalize()
        pad = plain[-1]
        assert 1 <= pad <= 16 and plain[-pad:] == bytes([pad]) * pad, "bad PKCS#7 padding"
        plain = plain[:-pad]
        out["plain_size"] = len(plain)
        out["plain_sha256"] = hashlib.sha256(plain).hexdigest()
        z = zipfile.ZipFile(io.BytesIO(plain))
        out["testzip"] = z.testzip()
        out["members"] = describe(z, True)
    elif mode == "sparse":
        z = zipfile.ZipFile(sys.argv[2])
        out["members"] = describe(z, False)
    else:
        raise SystemExit("unknown mode " + mode)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
