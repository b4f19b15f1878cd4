#!/usr/bin/env python3
"""Authorises a download of one build on a running fus-sim (smart2: nonce, BinaryInform,
InitForMass) and prints the URL and the Authorization header a plain curl GET needs."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "sim"))
import independent_client as ic  # noqa: E402


class Running(ic.Sim):
    def __init__(self, port):  # an already running fus-sim
        self.port = port


def main():
    port, model, region = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    sim = Running(port)
    builds = [b for b in sim.get_json("/_sim/builds")["builds"] if b["model"] == model and b["region"] == region]
    version = builds[0]["version"]
    client = ic.FusClient(sim, "smart2")
    client.generate_nonce()
    info = ic.parse_inform(client.inform(model, region, version))
    a = client.init_for_mass(info["name"], served_version=info["served"], region=region,
                             model_type=info["model_type"])
    ic.check(a.status() == "200", "InitForMass refused")
    nonce = client.nonce_header
    print(f"http://127.0.0.1:{port}{client.paths['download']}?file={info['path']}{info['name']}")
    print(client.authorization(nonce, ic.smart2_signature(nonce)))
    print(info["size"])


if __name__ == "__main__":
    main()
