#!/usr/bin/env python3
"""The Atom feed and --notify-url (issue 15) end to end: fus-sim and fusproxy on loopback
ports; Debian's python3-feedparser parses the feed; a local HTTP receiver gets the events.

usage: feed_tests.py --fusproxy PATH --fus-sim PATH [--source-dir DIR] CASE...  (--list)
"""
import http.server
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, curl, run_cases, wait_until  # noqa: E402
from cache_tests import Env, build_of  # noqa: E402

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


@case
def atom_feed_parses(paths):
    """feed.atom is application/atom+xml, parses without a bozo flag in feedparser, and its
    entries equal the version list (order, links, stable ids, dates); 304 on If-None-Match."""
    try:
        import feedparser
    except ImportError:
        print("SKIPPED: python3-feedparser is not installed (scripts/setup.sh --test)")
        sys.exit(77)
    with Env(paths) as env:
        proxy = env.proxy()
        for model, region in (("SM-A207F", "SER"), ("SM-G990B", "BTU")):
            path = f"/firmware/{model}/{region}"
            versions = curl(proxy.url(path)).json()
            r = curl(proxy.url(path + "/feed.atom"))
            check(r.status == 200, f"feed: {r!r}")
            check(r.headers.get("content-type", "").startswith("application/atom+xml"),
                  f"Content-Type: {r.headers}")
            feed = feedparser.parse(r.body)
            check(not feed.bozo, f"feedparser: {feed.get('bozo_exception')}")
            check(feed.version == "atom10", f"an Atom 1.0 feed: {feed.version}")
            check(feed.feed.get("id", "").startswith("urn:uuid:"), f"feed id {feed.feed}")
            check(feed.feed.get("updated_parsed"), "feed updated")
            got = [[link.href for link in e.links if link.rel == "alternate"][0]
                   .rsplit("/", 1)[-1].replace("_", "/") for e in feed.entries]
            want = [v["version"] for v in versions["versions"]]
            check(got == want, f"{model}/{region}: entries {got} != versions {want}")
            for e, v in zip(feed.entries, versions["versions"]):
                check(e.get("updated_parsed") and e.id.startswith("urn:uuid:"), f"entry {e}")
                check(v["version"].split("/")[0] in e.title, f"title {e.title}")
                enclosure = [link for link in e.links if link.rel == "enclosure"]
                check(enclosure and enclosure[0].href.endswith(
                    v["version"].replace("/", "_") + "/download"), f"enclosure of {e.links}")
            again = feedparser.parse(curl(proxy.url(path + "/feed.atom")).body)
            check([e.id for e in again.entries] == [e.id for e in feed.entries], "stable ids")
            cond = curl(proxy.url(path + "/feed.atom"), "-H", f"If-None-Match: {r.headers['etag']}")
            check(cond.status == 304, f"If-None-Match: {cond!r}")
        print(f"  feedparser: {len(feed.entries)} entries, ids {feed.entries[0].id} …")
        r = curl(proxy.url("/firmware/SM-X000/ZZZ/feed.atom"))
        check(r.status == 404 and r.error_code() == "not_found", f"unknown pair: {r!r}")


class Receiver:
    """A local webhook receiver: records every POST; the first `fail_first` answer 503."""

    def __init__(self, fail_first=0):
        self.events = []
        self.attempts = []
        self.fail_first = fail_first
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.attempts.append((self.headers.get("X-Fusproxy-Attempt"), body))
                if len(outer.attempts) <= outer.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.events.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?from=fusproxy"

    def close(self):
        self.server.shutdown()


def new_build_body(b):
    """A newer build of b's pair for POST /_sim/builds."""
    pda = b["version"].split("/")[0]
    newer = pda[:-3] + "Z" + "A1"  # year Z (2026), month A: newer than any in the catalogue
    return {"model": b["model"], "region": b["region"], "build": {
        "version": "/".join([newer, newer.replace("XX", "OX", 1), newer, newer]),
        "os": "V(Android 16)", "binary_name": f"{b['model']}_2_20260101000000_newbuild01_fac.zip.enc4",
        "model_path": "/neofus/9/", "logic_value": "abcdefghijklmnop", "plain_size": 1 << 20}}


@case
def notify_new_build(paths):
    """--mirror with --notify-url: the first check is the baseline (its fetch gives
    build_verified); when the sim starts serving a newer build the receiver gets new_build
    then build_verified for it. A receiver that fails the first time gets retries."""
    good, flaky = Receiver(), Receiver(fail_first=2)
    try:
        with Env(paths) as env:
            b = build_of(env.sim, "SM-G990B", "BTU")
            proxy = env.proxy(["--mirror", "SM-G990B/BTU", "--metadata-ttl", "1",
                               "--notify-url", good.url, "--notify-url", flaky.url])
            wait_until(lambda: [e["event"] for e in good.events] == ["build_verified"],
                       "build_verified of the first build", timeout=30)
            check(good.events[0]["version"] == b["version"], f"{good.events[0]}")
            body = new_build_body(b)
            env.sim.post("/_sim/builds", json.dumps(body).encode())
            new_version = body["build"]["version"]
            wait_until(lambda: len(good.events) >= 3, "new_build and build_verified", timeout=30)
            kinds = [(e["event"], e["version"]) for e in good.events[1:3]]
            check(kinds == [("new_build", new_version), ("build_verified", new_version)],
                  f"events after the new build: {kinds}")
            nb = good.events[1]
            check(nb["previous_version"] == b["version"], f"previous_version: {nb}")
            check(nb["download_url"].endswith(new_version.replace("/", "_") + "/download"), f"{nb}")
            got = curl(proxy.url(nb["download_url"]))
            check(got.status == 200 and len(got.body.encode("latin-1", "replace")) > 0,
                  f"the notified download_url serves: {got.status}")
            wait_until(lambda: len(flaky.events) >= 3, "the flaky receiver's events", timeout=30)
            # The receiver refuses its first two requests, whichever events they carry (the
            # deliveries interleave): every event still arrives, each retried with the next
            # attempt number, and exactly the two refusals were retried.
            by_id = {}
            for a, body in flaky.attempts:
                by_id.setdefault(json.loads(body)["id"], []).append(a)
            check(set(by_id) == {e["id"] for e in good.events}, f"every event arrives: {by_id}")
            for i, att in by_id.items():
                check(att == [str(n) for n in range(1, len(att) + 1)], f"attempts of {i}: {att}")
            check(sum(len(a) - 1 for a in by_id.values()) == 2, f"two 503s retried: {by_id}")
            check({e["id"] for e in flaky.events} == set(by_id), "delivered with the same event ids")
            metrics = curl(proxy.url("/metrics")).body
            check('fusproxy_notify_deliveries_total{outcome="retried"} 2' in metrics, "retries counted")
            check('fusproxy_notify_events_total{event="new_build"} 1' in metrics, "events counted")
            log = proxy.tail(400)
            check("notify: new_build SM-G990B/BTU" in log and "retrying in" in log, "events logged")
            print(f"  events: {[(e['event'], e['version'].split('/')[0]) for e in good.events]}; "
                  f"flaky receiver's attempts by event: {by_id}")
    finally:
        good.close()
        flaky.close()


@case
def cli_json(paths):
    """`fusproxy versions --json` is the HTTP route's document (Boost.JSON); `get --json` prints
    the verified build's metadata and the run's figures; stdout holds only the JSON (no
    progress bar: stderr is no terminal here)."""
    import subprocess
    with Env(paths) as env:
        proxy = env.proxy()
        upstream = ["--fus-url", env.sim.base_url, "--cloud-url", env.sim.base_url,
                    "--fota-url", env.sim.base_url]
        out = subprocess.run([paths.fusproxy, "versions", "SM-A207F", "SER", "--json", *upstream],
                             capture_output=True, text=True, timeout=60)
        check(out.returncode == 0, f"versions: {out.returncode} {out.stderr[-300:]}")
        check(json.loads(out.stdout) == curl(proxy.url("/firmware/SM-A207F/SER")).json(),
              "versions --json equals GET /firmware/SM-A207F/SER")
        target = os.path.join(env.dir, "fw.zip")
        out = subprocess.run([paths.fusproxy, "get", "SM-G990B", "BTU", "-o", target, "--json",
                              *upstream], capture_output=True, text=True, timeout=120)
        check(out.returncode == 0, f"get: {out.returncode} {out.stderr[-300:]}")
        doc = json.loads(out.stdout)
        check(doc["verified"] and doc["file"] == target and
              doc["plain_size"] == os.path.getsize(target), f"get --json: {doc}")
        check("\r" not in out.stderr, "no progress bar when stderr is not a terminal")
        out = subprocess.run([paths.fusproxy, "versions", "SM-X000", "ZZZ", *upstream],
                             capture_output=True, text=True, timeout=60)
        check(out.returncode == 3, f"not found exits 3: {out.returncode}")


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
