#!/usr/bin/env python3
"""fusproxy end to end: fus-sim and fusproxy as processes on ephemeral loopback ports, real
curl against the proxy, the simulator's catalogue and stats as the truth.

usage: e2e_tests.py --fusproxy PATH --fus-sim PATH --source-dir DIR CASE   (CASE from --list)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Proxy, Sim, check, curl, curl_parallel, run_cases, wait_until  # noqa: E402

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


A207F_NEWEST = "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2"
A207F_OLDER = "A207FXXU2BUB3/A207FOXM2BUB3/A207FXXU2BUB3/A207FXXU2BUB3"  # answered with newest
A207F_GONE = "A207FXXU1ATH3/A207FOXM1ATH3/A207FXXU1ATH3/A207FXXU1ATH3"  # not hosted
VALID_IMEI = "490154203237518"  # Luhn-valid


def vid(version):
    return version.replace("/", "_")


def meta_path(model, region, version):
    return f"/firmware/{model}/{region}/{vid(version)}"


def expect_error(reply, status, code, what):
    check(reply.status == status and reply.error_code() == code,
          f"{what}: want {status} {code}, got {reply!r}")
    check(reply.json()["error"].get("message"), f"{what}: the error has no message")


def expect_metadata_of(reply, b, what):
    """The metadata JSON equals the simulator's catalogue entry `b`."""
    check(reply.status == 200, f"{what}: {reply!r}")
    m = reply.json()
    want = {
        "model": b["model"], "region": b["region"], "version": b["served_version"],
        "version_id": vid(b["served_version"]), "os_version": b["os"],
        "filename": b["binary_name"],
        "plain_filename": b["binary_name"].rsplit(".", 1)[0],
        "encryption": b["encryption"], "size": b["encrypted_size"],
        "plain_size": b["plain_size"], "crc32": b["announced_crc32"],
        "download_url": f"/firmware/{b['model']}/{b['region']}/{vid(b['served_version'])}/download",
    }
    for k, v in want.items():
        check(m.get(k) == v, f"{what}: {k} = {m.get(k)!r}, want {v!r}")
    for k in ("last_modified", "changelog_url", "files"):
        check(k in m, f"{what}: no {k}")
    check(set(m["files"]) == {"bl", "ap", "cp", "csc", "home_csc"}, f"{what}: files {m['files']}")
    return m


# ------------------------------------------------------------------ metadata = catalogue

def metadata_matches_catalogue(paths, dialect):
    with Sim(paths) as sim, Proxy(paths, sim, dialect) as proxy:
        seen = set()
        for b in sim.builds():
            path = meta_path(b["model"], b["region"], b["version"])
            r = curl(proxy.url(path))
            what = f"{dialect} {path}"
            if not b["hosted"]:
                expect_error(r, 404, "not_hosted", what)
                check("served_version" not in r.json()["error"], f"{what}: names a served version")
            elif b["answers_with_newest"]:
                expect_error(r, 404, "not_hosted", what)
                e = r.json()["error"]
                check(e.get("served_version") == b["served_version"], f"{what}: {e}")
                check(e.get("download_url") ==
                      f"/firmware/{b['model']}/{b['region']}/{vid(b['served_version'])}/download",
                      f"{what}: {e}")
            else:
                expect_metadata_of(r, b, what)
                seen.add(b["encryption"])
        check(seen == {"enc4", "enc2"}, f"{dialect}: encryptions covered: {seen}")


@case
def metadata_catalogue_smart2(paths):
    metadata_matches_catalogue(paths, "smart2")


@case
def metadata_catalogue_legacy(paths):
    metadata_matches_catalogue(paths, "legacy")


@case
def fixture_a207f(paths):
    """The captured SM-A207F answer (tests/sim/catalogue_fixture.json) comes through intact."""
    catalogue = paths.source("tests/sim/catalogue_fixture.json")
    with Sim(paths, catalogue=catalogue) as sim:
        for dialect in ("smart2", "legacy"):
            with Proxy(paths, sim, dialect) as proxy:
                for version in ("latest", vid(A207F_NEWEST), "A207FXXU2CUI2"):
                    r = curl(proxy.url(f"/firmware/sm-a207f/ser/{version}"))
                    what = f"{dialect} {version}"
                    check(r.status == 200, f"{what}: {r!r}")
                    m = r.json()
                    want = {
                        "model": "SM-A207F", "region": "SER", "version": A207F_NEWEST,
                        "version_id": vid(A207F_NEWEST), "os_version": "R(Android 11)",
                        "filename": "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip.enc4",
                        "plain_filename": "SM-A207F_2_20210928113735_g3wsdfg48a_fac.zip",
                        "encryption": "enc4", "size": 4556071616, "plain_size": 4556071609,
                        "crc32": 1830059332, "last_modified": "2021-10-07T16:59:09Z",
                        "changelog_url": "https://doc.samsungmobile.com/SM-A207F/SER/doc.html",
                        "files": {
                            "bl": "BL_A207FXXU2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT.tar.md5",
                            "ap": "AP_A207FXXU2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT_meta_RKEY_OS11.tar.md5",
                            "cp": "CP_A207FXXU2CUI2_CP20395837_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT.tar.md5",
                            "csc": "CSC_OMC_OXM_A207FOXM2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT.tar.md5",
                            "home_csc": "HOME_CSC_OMC_OXM_A207FOXM2CUI2_CL22251137_QB43560309_REV00_user_low_ship_MULTI_CERT.tar.md5",
                        },
                        "download_url": f"/firmware/SM-A207F/SER/{vid(A207F_NEWEST)}/download",
                    }
                    for k, v in want.items():
                        check(m.get(k) == v, f"{what}: {k} = {m.get(k)!r}, want {v!r}")
        # The logic value ehbkrulq43h44mqw is the ENC4 key input: a plain_size read from the
        # decrypted last block's pad proves the key derived from it is right.


# -------------------------------------------------------------------------- version lists

@case
def version_list(paths):
    with Sim(paths) as sim:
        builds = sim.builds()
        for model, region in (("SM-S931U1", "XAA"), ("SM-G990B", "BTU"), ("SM-A207F", "SER")):
            pair = [b for b in builds if b["model"] == model and b["region"] == region]
            stable = [b["version"] for b in pair if not b["beta"]]
            with Proxy(paths, sim, "smart2") as proxy:
                r = curl(proxy.url(f"/firmware/{model}/{region}"))
                check(r.status == 200, f"{model}: {r!r}")
                v = r.json()
                check(v["model"] == model and v["region"] == region, f"{model}: {v}")
                got = [(e["version"], e["beta"]) for e in v["versions"]]
                want = [(b["version"], b["beta"]) for b in pair]  # the catalogue is newest first
                check(got == want, f"{model} smart2 versions:\n got {got}\nwant {want}")
                check(all("os" in e for e in v["versions"]), f"{model}: os missing")
                check(v["latest"] == stable[0], f"{model}: latest {v['latest']} != {stable[0]}")
                if model == "SM-G990B":
                    check(v["versions"][0]["beta"] and v["versions"][0]["os"] == "Z(Android 99)",
                          f"the beta is listed first and flagged: {v['versions'][0]}")
            with Proxy(paths, sim, "legacy") as proxy:
                # Legacy has no SmartHistory: FOTA only (stable builds, latest first).
                r = curl(proxy.url(f"/firmware/{model}/{region}"))
                check(r.status == 200, f"{model} legacy: {r!r}")
                v = r.json()
                check(v["latest"] == stable[0], f"{model} legacy latest: {v['latest']}")
                check(v["versions"][0]["version"] == stable[0], f"{model} legacy: {v['versions']}")
                check(not any(e["beta"] for e in v["versions"]), f"{model} legacy: {v}")
                check({e["version"] for e in v["versions"]} <= set(stable), f"{model} legacy: {v}")
        with Proxy(paths, sim, "smart2") as proxy:
            r = curl(proxy.url("/firmware/SM-X000X/XXX"))
            expect_error(r, 404, "not_found", "unknown model/region")


# ------------------------------------------------------------ the served build is the truth

@case
def served_build_is_truth(paths):
    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        r = curl(proxy.url(meta_path("SM-A207F", "SER", A207F_OLDER)))
        expect_error(r, 404, "not_hosted", "older version answered with the newest build")
        e = r.json()["error"]
        check(e["served_version"] == A207F_NEWEST, f"served_version: {e}")
        check(e["download_url"] == f"/firmware/SM-A207F/SER/{vid(A207F_NEWEST)}/download", f"{e}")
        # Asked twice (the definitive answer is remembered briefly): the same.
        r2 = curl(proxy.url(meta_path("SM-A207F", "SER", A207F_OLDER)))
        check(r2.status == 404 and r2.json() == r.json(), f"second ask: {r2!r}")
        r = curl(proxy.url(meta_path("SM-A207F", "SER", A207F_GONE)))
        expect_error(r, 404, "not_hosted", "a build that is not hosted")
        # PDA only, '_' form and %2F form: the same build.
        forms = ["A207FXXU2CUI2", vid(A207F_NEWEST), A207F_NEWEST.replace("/", "%2F"),
                 A207F_NEWEST.replace("/", "%2f"), "a207fxxu2cui2"]
        for form in forms:
            r = curl(proxy.url(f"/firmware/SM-A207F/SER/{form}"))
            check(r.status == 200 and r.json()["version"] == A207F_NEWEST, f"{form}: {r!r}")
        # A PDA that is not in the version list.
        r = curl(proxy.url("/firmware/SM-A207F/SER/A207FXXU9ZZZ9"))
        expect_error(r, 404, "not_found", "unknown PDA")
        # The served build's download answers (HEAD: from metadata, no fetch).
        r = curl(proxy.url(f"/firmware/SM-A207F/SER/{vid(A207F_NEWEST)}/download"), "-I")
        check(r.status == 200, f"download HEAD: {r!r}")


# ---------------------------------------------------------------------------- upstream faults

@case
def upstream_faults(paths):
    """Each fault: transient ones are retried (200), a definitive answer is the documented
    JSON error; then the same request works (errors are not cached). A fresh proxy per
    fault, so that nothing was cached before. metadata_faults_tests.py covers every step."""
    steps = [
        ("auth401@inform*1", 200, None),  # one 401: fresh nonce, one retry, recovered
        ("auth401@inform*2", 200, None),  # beyond the session's retry: a new session
        ("auth401@download*1", 200, None),  # the plain_size range GET: re-authorised
        ("status=500@inform*1", 200, None),
        ("status=503@inform*1", 200, None),
        ("status=500@download*1", 200, None),
        ("firewall@inform*1", 200, None),
        ("truncate@inform*1", 200, None),
        ("slow-first-byte=3s@inform*1", 200, None),
        # A success answer without BINARY_NAME: nothing to download, so not hosted. That is a
        # definitive answer: remembered for min(TTL, 30 s), so the next request repeats it.
        ("no-name@inform*1", 404, "not_hosted"),
    ]
    with Sim(paths) as sim:
        b = next(x for x in sim.builds() if x["version"] == A207F_NEWEST)
        path = meta_path("SM-A207F", "SER", A207F_NEWEST)
        for spec, status, code in steps:
            with Proxy(paths, sim, "smart2", ["--upstream-timeout", "1"]) as proxy:
                sim.reset_stats()
                sim.arm(spec)
                r = curl(proxy.url(path))
                if status == 200:
                    expect_metadata_of(r, b, spec)
                else:
                    expect_error(r, status, code, spec)
                s = sim.stats()
                check(sum(s["faults_fired"].values()) >= 1, f"{spec}: the fault did not fire")
                check(not s["faults_armed"], f"{spec}: still armed: {s['faults_armed']}")
                if code == "not_hosted":
                    expect_error(curl(proxy.url(path)), status, code, f"the request after {spec}")
                    continue
                expect_metadata_of(curl(proxy.url(path)), b, f"the request after {spec}")


@case
def upstream_unreachable(paths):
    with Sim(paths) as sim, Proxy(paths, sim, "smart2", ["--upstream-deadline", "2"]) as proxy:
        b = next(b for b in sim.builds() if b["model"] == "SM-G900F")
        path = meta_path(b["model"], b["region"], b["version"])
        # Ask once first, so that a pooled keep-alive connection to the simulator exists.
        expect_metadata_of(curl(proxy.url("/firmware/SM-A207F/SER/" + vid(A207F_NEWEST))),
                           next(x for x in sim.builds() if x["version"] == A207F_NEWEST), "warm")
        sim.stop()
        r = curl(proxy.url(path))
        expect_error(r, 503, "upstream_unreachable", "simulator stopped")
        r = curl(proxy.url("/firmware/SM-G900F/DBT"))
        expect_error(r, 503, "upstream_unreachable", "simulator stopped (versions)")
        sim.restart()
        expect_metadata_of(curl(proxy.url(path)), b, "simulator back")


@case
def imei_required(paths):
    with Sim(paths, require_imei=True) as sim:
        b = next(x for x in sim.builds() if x["version"] == A207F_NEWEST)
        path = meta_path("SM-A207F", "SER", A207F_NEWEST)
        with Proxy(paths, sim, "legacy") as proxy:
            r = curl(proxy.url(path))
            expect_error(r, 502, "upstream_imei_required", "legacy without --imei")
            check("--imei" in r.json()["error"]["message"], f"the message names --imei: {r!r}")
        with Proxy(paths, sim, "legacy", ["--imei", f"SM-A207F={VALID_IMEI}"]) as proxy:
            expect_metadata_of(curl(proxy.url(path)), b, "legacy with --imei")
        # smart2 sends no IMEI and needs none.
        with Proxy(paths, sim, "smart2") as proxy:
            expect_metadata_of(curl(proxy.url(path)), b, "smart2")


@case
def legacy_wrong_keys(paths):
    with Sim(paths, legacy_keys="2020") as sim:
        b = next(x for x in sim.builds() if x["version"] == A207F_NEWEST)
        path = meta_path("SM-A207F", "SER", A207F_NEWEST)
        with Proxy(paths, sim, "legacy", ["--legacy-keys", "2026"]) as proxy:
            expect_error(curl(proxy.url(path)), 502, "upstream_auth", "legacy, wrong key set")
        with Proxy(paths, sim, "legacy", ["--legacy-keys", "2020"]) as proxy:
            expect_metadata_of(curl(proxy.url(path)), b, "legacy, right key set")


# ------------------------------------------------------------------------ cache, staleness

@case
def stale_while_error(paths):
    # Past the deadline of its retries, a failing refresh serves the stale answer.
    with Sim(paths) as sim, Proxy(paths, sim, "smart2", ["--metadata-ttl", "1",
                                                          "--upstream-deadline", "1"]) as proxy:
        latest = proxy.url("/firmware/SM-A207F/SER/latest")
        versions = proxy.url("/firmware/SM-A207F/SER")
        first = curl(latest)
        check(first.status == 200 and "warning" not in first.headers, f"first: {first!r}")
        check(curl(versions).status == 200, "versions")
        sim.stop()
        for url in (latest, versions):
            def stale():
                r = curl(url)
                check(r.status == 200, f"while upstream is down: {r!r}")
                return r if "warning" in r.headers else None
            r = wait_until(stale, f"a stale answer of {url}", timeout=15, interval=0.2)
            check(r.headers["warning"].startswith("110"), f"Warning: {r.headers['warning']}")
            check(int(r.headers.get("age", "0")) >= 1, f"Age: {r.headers.get('age')}")
            if url == latest:
                check(r.json() == first.json(), "the stale answer is the cached one")
        # A version never asked for has nothing stale to fall back on.
        r = curl(proxy.url("/firmware/SM-G990B/BTU/latest"))
        expect_error(r, 503, "upstream_unreachable", "uncached while down")


@case
def single_flight(paths):
    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        sim.reset_stats()
        statuses = curl_parallel([proxy.url("/firmware/SM-A207F/SER/latest")] * 200)
        check(len(statuses) == 200 and set(statuses) == {200}, f"statuses: {sorted(set(statuses))} "
              f"({len(statuses)})")
        s = sim.stats()
        check(s["sessions_created"] == 1, f"sessions_created {s['sessions_created']}")
        nonce = s["routes"].get("NF_SmartDownloadGenerateNonce.do", {}).get("requests")
        check(nonce == 1, f"GenerateNonce requests: {nonce} ({s['routes']})")
        history = s["routes"].get("SmartHistory.do", {}).get("requests")
        check(history == 1, f"SmartHistory requests: {history}")
        # The same for a version list (nothing of it cached yet: another pair).
        sim.reset_stats()
        statuses = curl_parallel([proxy.url("/firmware/SM-S931U1/XAA")] * 200)
        check(set(statuses) == {200} and len(statuses) == 200, f"versions: {sorted(set(statuses))}")
        history = sim.stats()["routes"].get("SmartHistory.do", {}).get("requests")
        check(history == 1, f"SmartHistory requests for 200 version lists: {history}")
        # The proxy's own counters agree: two lookups went upstream; every other request
        # joined one in flight or was answered from the cache it filled.
        metrics = curl(proxy.url("/metrics")).body
        value = {l.split()[0]: int(l.split()[1]) for l in metrics.splitlines()
                 if l.startswith("fusproxy_resolver_") and not l.startswith("#") and "{" not in l}
        check(value["fusproxy_resolver_upstream_sessions_total"] == 2, f"{value}")
        check(value["fusproxy_resolver_cache_misses_total"] -
              value["fusproxy_resolver_singleflight_joins_total"] == 2, f"{value}")
        check(value["fusproxy_resolver_cache_hits_total"] +
              value["fusproxy_resolver_cache_misses_total"] == 400, f"{value}")
        check(value["fusproxy_resolver_singleflight_joins_total"] > 0, f"no joins: {value}")


@case
def malformed_never_upstream(paths):
    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        sim.reset_stats()
        bad = [
            "/firmware/SM-A207F!/SER/latest",
            "/firmware/SM--A207F/SER/latest",
            "/firmware/SM-A207F/SERXX/latest",
            "/firmware/SM-A207F/S/latest",
            "/firmware/SM-A207F/S%20R",
            "/firmware/SM-A207F/SER/A207F$XXU2CUI2",
            "/firmware/SM-A207F/SER/A_B_C_D_E",
            "/firmware/SM-A207F/SER/A207FXXU2CUI2%2",
            "/firmware/SM-A207F/SER/A207FXXU2CUI2%00",
            "/firmware/" + "A" * 40 + "/SER/latest",
            "/firmware/SM-A207F/SER/" + "A" * 300,
        ]
        for path in bad:
            r = curl(proxy.url(path))
            expect_error(r, 400, "bad_request", path)
        check(sim.upstream_requests() == 0, f"malformed requests reached upstream: {sim.stats()}")


@case
def demo_smoke(paths):
    with Proxy(paths, None, demo=True) as proxy:
        r = curl(proxy.url("/firmware/SM-A207F/SER/latest"))
        check(r.status == 200, f"demo latest: {r!r}")
        check(r.json()["version"] == A207F_NEWEST, f"demo latest: {r.json()}")
        r = curl(proxy.url("/firmware/SM-A207F/SER"))
        check(r.status == 200 and r.json()["latest"] == A207F_NEWEST, f"demo versions: {r!r}")


def main():
    return run_cases(CASES)


if __name__ == "__main__":
    sys.exit(main())
