#!/usr/bin/env python3
"""fusproxy observability, security and operations, end to end: fus-sim and fusproxy as
processes on loopback (tests/e2e/harness.py), real curl, promtool and headless Chromium.

usage: obs_tests.py --fusproxy PATH --fus-sim PATH --source-dir DIR --artifacts DIR CASE
Exit 77 (CTest SKIP_RETURN_CODE) when a tool the case needs is missing.
"""
import argparse
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, HERE)
from harness import (Failure, Paths, Proxy, Sim, check, curl, curl_parallel,  # noqa: E402
                     wait_until)

SKIP = 77
CASES = {}
ARGS = None


class Skip(Exception):
    pass


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def need(tool):
    path = shutil.which(tool)
    if not path:
        raise Skip(f"{tool} is not installed")
    return path


META = "/firmware/SM-A207F/SER/latest"


def some_traffic(proxy):
    for path in (META, "/firmware/SM-A207F/SER", "/firmware/SM-XXXX/SER", "/healthz", "/readyz",
                 "/nope", "/api/status", "/"):
        curl(proxy.url(path))


def sim_build(sim, model, region):
    """The newest hosted catalogue build of model/region."""
    for b in sim.builds():
        if b["model"] == model and b["region"] == region and b["hosted"]:
            return b
    raise Failure(f"no {model}/{region} in the simulator's catalogue")


def download_path(b):
    return f"/firmware/{b['model']}/{b['region']}/{b['served_version'].replace('/', '_')}/download"


def download(proxy, b, *args):
    """Downloads a build through the proxy: the number of bytes received (checked a zip)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "fw.zip")
        r = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", *args,
                            proxy.url(download_path(b))], capture_output=True, text=True)
        check(r.stdout == "200", f"download: HTTP {r.stdout} {r.stderr}")
        import zipfile
        with zipfile.ZipFile(out) as z:
            check(z.testzip() is None, "the downloaded zip's members check out")
        return os.path.getsize(out)


def throttled_sim(paths, bps):
    sim = Sim(paths)
    sim.argv += ["--throttle-bps", str(bps)]
    return sim


def start_download(proxy, b, interface=None, out="/dev/null"):
    argv = ["curl", "-sS", "-o", out, "-w", "%{http_code}", "--max-time", "60"]
    if interface:
        argv += ["--interface", interface]
    return subprocess.Popen(argv + [proxy.url(download_path(b))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def active_downloads(proxy):
    return curl(proxy.url("/api/status")).json()["downloads"]


def metric_values(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def promtool_check(text):
    promtool = need("promtool")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                       text=True)
    check(r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(),
          f"promtool check metrics: rc {r.returncode}\n{r.stdout}{r.stderr}")


# ---- metrics ----

@case
def metrics_promtool(paths):
    need("promtool")
    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        some_traffic(proxy)
        build = sim_build(sim, "SM-G990B", "BTU")
        got = download(proxy, build)
        check(got == build["plain_size"], f"downloaded {got} of {build['plain_size']} bytes")
        # The same build again: served from the verified file in the cache.
        got = download(proxy, build)
        check(got == build["plain_size"], f"cached: downloaded {got} of {build['plain_size']}")
        r = curl(proxy.url("/metrics"))
        check(r.status == 200, f"/metrics: {r!r}")
        check(r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
              f"content type {r.headers.get('content-type')}")
        promtool_check(r.body)
        v = metric_values(r.body)
        check(v.get('fusproxy_http_requests_total{route="metadata",status="200"}') == 1,
              "metadata 200 counted once")
        check(v.get('fusproxy_http_requests_total{route="-",status="404"}', 0) >= 1,
              "an unknown path counted under route -")
        check(v.get("fusproxy_response_body_bytes_total", 0) >= build["plain_size"],
              "bytes served counted")
        check(v.get('fusproxy_http_requests_total{route="download",status="200"}') == 2,
              "the downloads counted")
        check('fusproxy_http_request_duration_seconds_bucket{route="metadata",le="+Inf"}' in v,
              "request duration histogram")
        for family in ("fusproxy_upstream_requests_total", "fusproxy_upstream_bytes_total",
                       "fusproxy_upstream_request_duration_seconds",
                       "fusproxy_upstream_time_to_first_byte_seconds",
                       "fusproxy_upstream_retries_total", "fusproxy_cache_hits_total",
                       "fusproxy_cache_misses_total", "fusproxy_cache_evictions_total",
                       "fusproxy_cache_size_bytes", "fusproxy_downloads_active",
                       "fusproxy_resolver_upstream_sessions_total",
                       "fusproxy_fetch_jobs_opened_total"):
            check(f"# TYPE {family} " in r.body, f"/metrics has no {family}")
        # The upstream and cache families record real figures (one cold, one cached download).
        check(v.get('fusproxy_upstream_requests_total{kind="download",outcome="ok"}', 0) > 0,
              "upstream download requests counted")
        check(v.get("fusproxy_upstream_bytes_total", 0) >= build["encrypted_size"],
              f"upstream bytes {v.get('fusproxy_upstream_bytes_total')} >= the encrypted size "
              f"{build['encrypted_size']}")
        check(v.get("fusproxy_cache_misses_total") == 1,
              f"one cache miss (the cold download): {v.get('fusproxy_cache_misses_total')}")
        check(v.get("fusproxy_cache_hits_total", 0) >= 1,
              f"a cache hit (the second download): {v.get('fusproxy_cache_hits_total')}")
        check(v.get("fusproxy_cache_size_bytes") == build["plain_size"],
              f"cache size {v.get('fusproxy_cache_size_bytes')} == {build['plain_size']}")
        check(v.get("fusproxy_cache_builds") == 1, f"builds {v.get('fusproxy_cache_builds')}")
        check(v.get('fusproxy_upstream_time_to_first_byte_seconds_count{kind="download"}', 0) > 0,
              "time to first byte observed for the ranged downloads")
        check(v.get('fusproxy_upstream_request_duration_seconds_count{kind="download"}', 0) > 0,
              "upstream download latency observed")


# ---- status page (headless Chromium over the DevTools protocol: tests/obs/browser.py) ----

def open_browser(name, **kw):
    """A headless Chromium page; its log goes with the screenshots (test artifacts)."""
    from browser import Browser, BrowserError, chromium_path
    if not chromium_path():
        raise Skip("chromium is not installed")
    os.makedirs(ARGS.artifacts, exist_ok=True)
    try:
        return Browser(log_path=os.path.join(ARGS.artifacts, name + ".chromium.log"), **kw)
    except BrowserError as e:
        raise Failure(f"chromium did not start: {e}")


def artifact(name):
    os.makedirs(ARGS.artifacts, exist_ok=True)
    path = os.path.join(ARGS.artifacts, name)
    if os.path.exists(path):
        os.unlink(path)
    return path


def keep_screenshot(browser, name):
    path = browser.screenshot(artifact(name))
    check(os.path.getsize(path) > 10_000, f"a screenshot was written: {path}")
    print(f"screenshot: {path}")


def no_page_errors(browser):
    errors = browser.console_errors()
    check(not errors, f"no JavaScript exceptions on the page: {errors}")


def service_line_rendered(browser):
    return browser.wait_for("document.getElementById('service').textContent.includes('serving')",
                            "the service line (from /api/status)")


# Every input, button, link, progress bar and table has a name a screen reader can say.
A11Y_AUDIT = """(() => {
  const bad = [];
  for (const i of document.querySelectorAll('input'))
    if (!i.labels.length && !i.getAttribute('aria-label')) bad.push('input#' + i.id);
  for (const b of document.querySelectorAll('button, a[href]'))
    if (!(b.getAttribute('aria-label') || b.textContent.trim())) bad.push(b.outerHTML.slice(0, 80));
  for (const p of document.querySelectorAll('progress'))
    if (!p.getAttribute('aria-label') && !p.labels.length) bad.push('progress');
  for (const t of document.querySelectorAll('table'))
    if (!t.caption) bad.push('table without caption');
  for (const s of document.querySelectorAll('section'))
    if (!s.getAttribute('aria-labelledby')) bad.push('section#' + s.id);
  return bad;
})()"""


@case
def status_page_browser(paths):
    """Browse model/region -> versions -> a build -> its members, to the build's download
    link, which answers the zip; the files are served with their type and ETag."""
    with Sim(paths) as sim, Proxy(paths, sim) as proxy, open_browser("browse") as browser:
        b = sim_build(sim, "SM-A207F", "SER")
        vid = b["served_version"].replace("/", "_")
        for path, ctype in (("/", "text/html"), ("/assets/app.js", "text/javascript"),
                            ("/assets/style.css", "text/css")):
            r = curl(proxy.url(path))
            check(r.status == 200 and r.headers["content-type"].startswith(ctype) and
                  r.headers.get("etag", "").startswith('"'), f"{path}: {r.status} {r.headers}")
            again = curl(proxy.url(path), "-H", "If-None-Match: " + r.headers["etag"])
            check(again.status == 304 and not again.body, f"{path} revalidates: {again.status}")
        check("script-src 'self'" in curl(proxy.url("/")).headers["content-security-policy"],
              "the page is served with a CSP that forbids inline and foreign scripts")

        check(browser.navigate(proxy.url("/")) == 200, "the page opens")
        service_line_rendered(browser)
        problems = browser.evaluate(A11Y_AUDIT)
        check(not problems, f"every control and table is named for screen readers: {problems}")
        # Browse with the keyboard only: the skip link comes first, then the look-up form.
        browser.press("Tab")
        check(browser.active() == "a.skip", f"first Tab: the skip link ({browser.active()})")
        browser.press("Tab")
        check(browser.active() == "model", f"second Tab: the model field ({browser.active()})")
        browser.type("sm-a207f")
        browser.press("Tab")
        check(browser.active() == "region", f"then the region field ({browser.active()})")
        browser.type("ser")
        browser.press("Enter")
        browser.wait_for("!!document.querySelector('#browse table')", "the versions table")
        check(browser.evaluate("location.hash") == "#SM-A207F/SER", "the lookup is in the URL")
        check(browser.evaluate("document.activeElement.id") == "browse-title",
              "focus moved to the versions heading")
        browser.wait_for("document.querySelector('#browse table tbody tr td:nth-child(4)')"
                         ".textContent.includes('MiB')", "the newest version's size")
        row = browser.evaluate("document.querySelector('#browse table tbody tr').innerText")
        check(b["served_version"] in row and "Android 11" in row and "2021-" in row and
              "24.0 MiB" in row, f"version, OS, date and size: {row!r}")
        hrefs = browser.evaluate("[...document.querySelectorAll('#browse a')].map(a => a.href)")
        check(proxy.url(f"/firmware/SM-A207F/SER/{vid}/download") in hrefs,
              f"the versions link the download: {hrefs}")
        check(proxy.url("/firmware/SM-A207F/SER/feed.atom") in hrefs, "and the Atom feed")
        keep_screenshot(browser, "status-page-versions.png")

        browser.evaluate(f"document.querySelector('#browse a[href=\"#SM-A207F/SER/{vid}\"]').click()")
        browser.wait_for("!!document.querySelector('#members table')", "the members table")
        facts = browser.evaluate("document.querySelector('#browse dl').innerText")
        check("Android 11" in facts and "24.0 MiB" in facts and "enc4" in facts,
              f"the build's facts: {facts!r}")
        link = browser.evaluate("document.getElementById('download-zip').href")
        check(link == proxy.url(f"/firmware/SM-A207F/SER/{vid}/download"), f"download link {link}")
        members = browser.evaluate(
            "[...document.querySelectorAll('#members tbody tr')].map(r => r.cells[0].innerText)")
        files = curl(proxy.url(f"/firmware/SM-A207F/SER/{vid}/files")).json()
        check(members == [f["name"] for f in files], f"every member listed: {members}")
        member_links = browser.evaluate(
            "[...document.querySelectorAll('#members a')].map(a => a.href)")
        check(all(any(h.endswith("/files/" + urllib.parse.quote(f["name"])) for h in member_links)
                  for f in files), f"a link to each member: {member_links}")
        # A tar member's entries: listed where the server has …/files/{member}/, else said so.
        if browser.evaluate("!!document.querySelector('#members button[aria-controls]')"):
            browser.evaluate("document.querySelector('#members button[aria-controls]').click()")
            panel = browser.wait_for(
                "(() => { const p = document.getElementById(document.querySelector("
                "'#members button[aria-controls]').getAttribute('aria-controls'));"
                " return p.querySelector('table, p.muted, p.err') ? p.innerText : ''; })()",
                "the entries panel")
            check("…" not in panel, f"entries panel: {panel!r}")
            print(f"entries panel: {panel[:200]!r}")
        problems = browser.evaluate(A11Y_AUDIT)
        check(not problems, f"the build view is named for screen readers: {problems}")
        keep_screenshot(browser, "status-page-build.png")
        # Following the link the page shows is the build's zip (status and size via HEAD, as
        # the browser would fetch it).
        head = browser.evaluate(f"fetch({json.dumps(link)}, {{method: 'HEAD'}}).then(r => "
                                "[r.status, r.headers.get('content-length'),"
                                " r.headers.get('content-disposition')])")
        check(head[0] == 200 and int(head[1]) == b["plain_size"] and
              "SM-A207F_2_" in (head[2] or ""), f"the download link answers the zip: {head}")
        # Errors in words: an unknown model.
        browser.evaluate("location.hash = '#SM-XXXX/SER'")
        err = browser.wait_for("(document.querySelector('#browse p.err') || {}).innerText",
                               "the error in words")
        check("Nothing found" in err and "[not_found]" in err, f"error shown in words: {err!r}")
        no_page_errors(browser)
    # The same page in dark mode, for the docs.
    with Sim(paths) as sim, Proxy(paths, sim) as proxy, \
            open_browser("dark", dark=True) as browser:
        curl(proxy.url(META))
        browser.navigate(proxy.url("/#SM-A207F/SER"))
        browser.wait_for("!!document.querySelector('#browse table')", "the versions table")
        service_line_rendered(browser)
        bg = browser.evaluate("getComputedStyle(document.body).backgroundColor")
        check(bg == "rgb(20, 23, 28)", f"dark background under prefers-color-scheme: dark: {bg}")
        keep_screenshot(browser, "status-page-dark.png")


@case
def status_page_download(paths):
    """A throttled download's progress bar moves on one open page (the DOM read twice), with
    rate, ETA, connections and per-connection rates; a screen reader hears it."""
    with throttled_sim(paths, 1 << 20) as sim, \
            Proxy(paths, sim, extra=["--connections", "2"]) as proxy, \
            open_browser("download") as browser:
        b = sim_build(sim, "SM-A207F", "SER")
        browser.navigate(proxy.url("/"))
        service_line_rendered(browser)
        client = start_download(proxy, b)
        try:
            bar = "document.querySelector('#downloads progress')"
            first = browser.wait_for(f"{bar} && {bar}.value > 0 && {bar}.value < {bar}.max && "
                                     f"[{bar}.value, {bar}.max]", "a progress bar", timeout=30)
            check(first[1] == b["encrypted_size"], f"the bar's maximum is the size: {first}")
            second = browser.wait_for(f"{bar}.value > {first[0]} && [{bar}.value, {bar}.max]",
                                      "the progress bar to move", timeout=30)
            check(second[0] > first[0], f"the bar moved: {first[0]} -> {second[0]}")
            row = browser.evaluate("document.querySelector('#downloads tbody tr').innerText")
            print(f"bar {first[0]} -> {second[0]} of {first[1]}; row: {row!r}")
            check(re.search(r"[0-9.]+ (KiB|MiB)/s", row), f"a rate: {row!r}")
            check(re.search(r"\b\d+s\b", row), f"an ETA: {row!r}")
            check(re.search(r"\b[12] of [12] \(max 2\)", row), f"connections: {row!r}")
            rates = browser.evaluate("document.querySelectorAll('#downloads ul.rates li').length")
            check(rates >= 1, f"per-connection rates: {rates}")
            label = browser.evaluate(f"{bar}.getAttribute('aria-label') + ' / ' + "
                                     f"{bar}.getAttribute('aria-valuetext')")
            check("SM-A207F" in label and "%" in label, f"the bar is labelled: {label!r}")
            live = browser.wait_for("document.getElementById('downloads-live').textContent",
                                    "an announcement in the aria-live region")
            check("SM-A207F" in live, f"announced: {live!r}")
            problems = browser.evaluate(A11Y_AUDIT)
            check(not problems, f"the downloads are named for screen readers: {problems}")
            keep_screenshot(browser, "status-page.png")
            no_page_errors(browser)
        finally:
            client.kill()
            client.wait()


@case
def status_page_token(paths):
    """With --token: curl's Basic and CSRF checks; in Chromium the page opens through HTTP
    Basic in the URL (the browser's own auth path) and polls /api/status with it."""
    token = "s3cret-token"
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--token", token]) as proxy:
        r = curl(proxy.url("/"), "-H", "Accept: text/html,*/*;q=0.8")
        check(r.status == 401 and "basic" in r.headers.get("www-authenticate", "").lower(),
              f"a Basic challenge: {r.headers}")
        check('action="login"' in r.body and r.headers["content-type"].startswith("text/html"),
              "the 401 of the page carries the sign-in form for people (Accept: text/html)")
        check(curl(proxy.url("/")).error_code() == "unauthorized", "and JSON for clients")
        check(curl(proxy.url("/api/status")).headers["content-type"] == "application/json",
              "other routes keep their JSON 401")
        check(curl(proxy.url("/assets/app.js")).status == 200, "the page's assets need no token")
        check(curl(proxy.url("/api/status"), "-u", "anyone:" + token).status == 200, "Basic")
        check(curl(proxy.url("/api/status"), "-u", "anyone:wrong").status == 401, "wrong password")
        r = curl(proxy.url("/api/mirror"), "-u", "x:" + token, "-H", "Origin: http://evil.example",
                 "--data", '{"model":"SM-A207F","region":"SER"}')
        check(r.status == 403 and r.error_code() == "forbidden", f"cross-site POST: {r!r}")
        r = curl(proxy.url("/api/mirror"), "-u", "x:" + token,
                 "-H", f"Origin: http://127.0.0.1:{proxy.port}",
                 "--data", '{"model":"SM-A207F","region":"SER"}')
        check(r.status == 200, f"same-origin POST: {r!r}")
        with open_browser("token-basic") as browser:
            status = browser.navigate(f"http://viewer:{token}@127.0.0.1:{proxy.port}/")
            check(status == 200, f"the page opened with Basic from the URL: {status}")
            service_line_rendered(browser)
            browser.wait_for("document.querySelector('#mirrors tbody') && "
                             "document.querySelector('#mirrors tbody').innerText.includes('SM-A207F')",
                             "the mirrors table (management data) with Basic")
            check(not browser.evaluate("document.getElementById('logout').hidden"),
                  "sign-out is offered when a token is set")
            keep_screenshot(browser, "status-page-token-basic.png")
            no_page_errors(browser)
        with open_browser("token-prompt") as browser:
            # The browser's prompt, answered with the token as password (any user name).
            browser.answer_auth_prompts("viewer", token)
            check(browser.navigate(proxy.url("/")) == 200, "the page opened after the prompt")
            service_line_rendered(browser)
            check(browser.auth_prompts == 1, f"one prompt: {browser.auth_prompts}")
            no_page_errors(browser)


@case
def status_page_login(paths):
    """With --token, the login form: a wrong token is refused in words; the right one sets
    an HttpOnly, SameSite=Strict cookie (an HMAC, not the token) that opens the page and
    its management actions; cross-site use of the cookie is refused; sign-out ends it."""
    token = "s3cret-token"
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--token", token]) as proxy, \
            open_browser("login") as browser:
        curl(proxy.url(META), "-H", "Authorization: Bearer " + token)  # a cached build to list
        browser.answer_auth_prompts(None)  # a person without the token cancels the prompt
        check(browser.navigate(proxy.url("/")) == 401, "without credentials: 401")
        check(browser.auth_prompts == 1, "the browser's own prompt was offered first")
        browser.wait_for("!!document.getElementById('token')", "the sign-in form")
        keep_screenshot(browser, "status-page-login.png")

        def submit(value):
            browser.events.clear()
            browser.evaluate(f"document.getElementById('token').value = {json.dumps(value)};"
                             "document.querySelector('form').submit()")
            browser.wait_event("Page.loadEventFired")

        submit("wrong")
        alert = browser.wait_for("(document.querySelector('[role=alert]') || {}).innerText",
                                 "the refusal in words")
        check("not right" in alert, f"wrong token: {alert!r}")
        check(not browser.call("Network.getCookies")["cookies"], "no cookie for a wrong token")

        submit(token)
        check(browser.evaluate("location.pathname") == "/", "back on the page after sign-in")
        service_line_rendered(browser)
        cookies = browser.call("Network.getCookies")["cookies"]
        check(len(cookies) == 1, f"one cookie: {cookies}")
        c = cookies[0]
        check(c["name"] == "fusproxy_session" and c["httpOnly"] and c["sameSite"] == "Strict",
              f"HttpOnly, SameSite=Strict: {c}")
        check(token not in c["value"] and c["value"].startswith("v1."),
              f"the cookie is not the token: {c['value']}")
        check(browser.evaluate("document.cookie") == "", "scripts cannot read it")

        # A management action from the page (same origin): mirror a model.
        browser.evaluate("document.getElementById('mirror-model').value = 'SM-A207F';"
                         "document.getElementById('mirror-region').value = 'SER';"
                         "document.getElementById('mirror-submit').click()")
        notice = browser.wait_for("document.getElementById('notice').textContent",
                                  "the mirror action's answer")
        check("Now mirroring SM-A207F/SER" in notice, f"mirror added: {notice!r}")
        check(any(m["model"] == "SM-A207F" for m in curl(
            proxy.url("/api/mirror"), "-H", "Authorization: Bearer " + token).json()["mirrors"]),
            "the mirror exists")

        # The same cookie used by another site (CSRF): refused, even a top-level form post.
        cookie = f"fusproxy_session={c['value']}"
        r = curl(proxy.url("/api/mirror/SM-A207F/SER"), "-X", "DELETE", "-H", "Cookie: " + cookie,
                 "-H", "Origin: http://evil.example", "-H", "Sec-Fetch-Site: cross-site")
        check(r.status == 403 and r.error_code() == "forbidden", f"cross-site DELETE: {r!r}")
        r = curl(proxy.url("/api/status"), "-H", "Cookie: " + cookie)
        check(r.status == 200, f"the cookie opens the API for its browser: {r.status}")
        r = curl(proxy.url("/api/status"), "-H", "Cookie: " + cookie[:-2] + "xx")
        check(r.status == 401, f"a tampered cookie does not: {r.status}")

        browser.events.clear()
        browser.evaluate("document.querySelector('#logout button').click()")
        browser.wait_event("Page.loadEventFired")
        check(browser.evaluate("location.pathname") == "/login", "sign-out leads to the form")
        check(not browser.call("Network.getCookies")["cookies"], "the cookie is gone")
        check(browser.navigate(proxy.url("/")) == 401, "the page needs signing in again")
        no_page_errors(browser)


# ---- security and abuse limits ----

ROUTES = ["/", "/api/status", "/metrics", "/firmware/SM-A207F/SER", META,
          "/firmware/SM-A207F/SER/latest/files", "/firmware/SM-A207F/SER/latest/download",
          "/firmware/SM-A207F/SER/latest/files/x.tar", "/no/such/route"]


@case
def token_every_route(paths):
    token = "s3cret-Token-123"
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--token", token]) as proxy:
        for path in ROUTES:
            r = curl(proxy.url(path))
            check(r.status == 401 and r.error_code() == "unauthorized", f"{path}: {r!r}")
            check("bearer" in r.headers.get("www-authenticate", "").lower(), f"{path}: challenge")
            wrong = curl(proxy.url(path), "-H", "Authorization: Bearer " + token + "x")
            check(wrong.status == 401, f"{path} with a wrong token: {wrong!r}")
            head = curl(proxy.url(path), "-I")
            check(head.status == 401, f"HEAD {path}: {head!r}")
        for path in ("/healthz", "/readyz"):
            check(curl(proxy.url(path)).status == 200, f"{path} stays open")
        ok = curl(proxy.url(META), "-H", "Authorization: Bearer " + token)
        check(ok.status == 200, f"with the token: {ok!r}")
        check(curl(proxy.url("/metrics"), "-H", "authorization: bearer " + token).status == 200,
              "the scheme is case-insensitive")
        with open(proxy.log_path, errors="replace") as f:
            log = f.read()
        check(token not in log, "the token never appears in the log")
        check("token=***" in log, "the start-up line shows the token masked")


def make_cert(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out",
                        cert], capture_output=True, text=True)
    check(r.returncode == 0, f"openssl req: {r.stderr}")
    return cert, key


@case
def tls_same_port(paths):
    need("openssl")
    with tempfile.TemporaryDirectory() as d, Sim(paths) as sim:
        cert, key = make_cert(d)
        with Proxy(paths, sim, extra=["--tls-cert", cert, "--tls-key", key]) as proxy:
            https = f"https://127.0.0.1:{proxy.port}"
            r = curl(https + META, "--cacert", cert)
            check(r.status == 200 and r.json()["model"] == "SM-A207F", f"HTTPS metadata: {r!r}")
            r = curl(https + "/healthz", "--cacert", cert, "--http1.1")
            check(r.status == 200, f"HTTPS healthz: {r!r}")
            r = curl(proxy.url("/healthz"))
            check(r.status == 200, f"plain HTTP on the same port: {r!r}")
            bad = curl(https + "/healthz")  # no --cacert: the self-signed cert is refused
            check(bad.status == 0, f"curl without the CA must refuse: {bad!r}")
            # keep-alive over TLS: two requests on one connection
            out = subprocess.run(["curl", "-sS", "--cacert", cert, "-o", "/dev/null", "-o",
                                  "/dev/null", "-w", "%{http_code} %{num_connects}\n",
                                  https + "/healthz", https + "/readyz"],
                                 capture_output=True, text=True)
            check(out.stdout.split() == ["200", "1", "200", "0"],
                  f"two requests on one TLS connection: {out.stdout!r} {out.stderr}")
            v = metric_values(curl(https + "/metrics", "--cacert", cert).body)
            check(v["fusproxy_tls_connections_total"] >= 3, f"TLS connections counted: {v}")
            check(v["fusproxy_tls_handshake_failures_total"] >= 1, "failed handshake counted")
        # a certificate that does not load stops start-up with a message naming the flag
        p = Proxy(paths, sim, extra=["--tls-cert", os.path.join(d, "missing.pem"),
                                     "--tls-key", key])
        try:
            p.start(timeout=10)
            raise Failure("started with a missing certificate")
        except Failure as e:
            check("--tls-cert" in str(e), f"the error names --tls-cert: {e}")
        finally:
            p.stop()
            shutil.rmtree(p.cache_dir, ignore_errors=True)


@case
def rate_limit_per_ip(paths):
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--rate-limit", "50"]) as proxy:
        url = proxy.url("/api/status")  # health checks are not limited
        started = time.monotonic()
        statuses = curl_parallel([url] * 500, parallel_max=50)
        elapsed = time.monotonic() - started
        limited = statuses.count(429)
        served = statuses.count(200)
        print(f"500 requests in {elapsed:.2f}s: {served} x 200, {limited} x 429")
        check(len(statuses) == 500, f"every request answered: {len(statuses)}")
        check(set(statuses) <= {200, 429}, f"only 200/429: {set(statuses)}")
        # burst 50 plus 50/s while the burst lasts
        check(served <= 50 + 50 * (elapsed + 0.5), f"at most the rate got through: {served}")
        check(limited >= 500 - (50 + 50 * (elapsed + 0.5)), f"the rest got 429: {limited}")
        # A 429 says when to come back: 100 requests on one connection, headers dumped.
        with tempfile.TemporaryDirectory() as d:
            dump = os.path.join(d, "headers")
            subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", dump] + [url] * 100,
                           capture_output=True)
            heads = open(dump, errors="replace", newline="").read().split("\r\n\r\n")
        limited_heads = [h for h in heads if h.startswith("HTTP/1.1 429")]
        check(limited_heads, "429s among 100 requests on one connection")
        retry = re.search(r"(?im)^retry-after: *(\d+)", limited_heads[0])
        check(retry and int(retry.group(1)) >= 1, f"Retry-After: {limited_heads[0]}")
        other = curl(url, "--interface", "127.0.0.2")
        check(other.status == 200, f"another client address is served: {other!r}")
        check(curl(proxy.url("/healthz")).status == 200, "health checks are never limited")
        v = metric_values(curl(proxy.url("/metrics"), "--interface", "127.0.0.3").body)
        check(v["fusproxy_rate_limited_total"] >= limited, "429s counted")


@case
def download_caps(paths):
    with throttled_sim(paths, 256 << 10) as sim, Proxy(paths, sim, extra=[
            "--connections", "2", "--max-downloads-per-client", "1",
            "--max-downloads", "2", "--queue-timeout", "0"]) as proxy:  # 0: refuse at once
        b = sim_build(sim, "SM-A207F", "SER")
        first = start_download(proxy, b)
        others = []
        try:
            wait_until(lambda: metric_values(curl(proxy.url("/metrics")).body)
                       .get("fusproxy_downloads_active", 0) >= 1, "the first download streaming")
            r = curl(proxy.url(download_path(b)), "--max-time", "5")
            check(r.status == 429 and r.error_code() == "rate_limited",
                  f"a second download from the same client: {r!r}")
            check(int(r.headers.get("retry-after", "0")) >= 1, f"Retry-After: {r.headers}")
            head = curl(proxy.url(download_path(b)), "-I")
            check(head.status == 200, f"HEAD takes no slot: {head!r}")
            others.append(start_download(proxy, b, interface="127.0.0.2"))
            wait_until(lambda: metric_values(curl(proxy.url("/metrics")).body)
                       .get("fusproxy_downloads_active", 0) >= 2, "a second client's download")
            r = curl(proxy.url(download_path(b)), "--interface", "127.0.0.3", "--max-time", "5")
            check(r.status == 429 and r.headers.get("retry-after"),
                  f"a third client above the total cap: {r!r}")
            v = metric_values(curl(proxy.url("/metrics")).body)
            check(v["fusproxy_downloads_refused_total"] == 2, f"refusals counted: {v}")
        finally:
            for p in [first] + others:
                p.kill()
                p.wait()


@case
def size_limits(paths):
    with Sim(paths) as sim, Proxy(paths, sim) as proxy:
        r = curl(proxy.url("/healthz"), "-H", "X-Big: " + "a" * 20000)
        check(r.status == 431, f"a 20 KB header: {r!r}")
        r = curl(proxy.url("/firmware/" + "A" * 9000))
        check(r.status == 414, f"a 9 KB URL: {r!r}")
        with tempfile.NamedTemporaryFile() as body:
            body.write(b"x" * 100_000)
            body.flush()
            r = curl(proxy.url("/api/status"), "--data-binary", "@" + body.name)
            check(r.status == 413, f"a 100 KB body: {r!r}")
        check(curl(proxy.url("/healthz")).status == 200, "still serving")


@case
def slowloris(paths):
    with Sim(paths) as sim, Proxy(paths, sim, extra=["--header-timeout", "2"]) as proxy:
        slow = socket.create_connection(("127.0.0.1", proxy.port))
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        started = time.monotonic()
        cut_at = None
        served = []
        for byte in request:
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                cut_at = time.monotonic() - started
                break
            t0 = time.monotonic()
            r = curl(proxy.url("/healthz"), timeout=5)
            served.append(time.monotonic() - t0)
            check(r.status == 200, f"another client while the slow one trickles: {r!r}")
            slow.settimeout(1.0)
            try:
                if slow.recv(1) == b"":
                    cut_at = time.monotonic() - started
                    break
            except socket.timeout:
                pass
            except OSError:
                cut_at = time.monotonic() - started
                break
            if time.monotonic() - started > 10:
                break
        slow.close()
        print(f"slow client cut after {cut_at}s; others served in max "
              f"{max(served) * 1000:.0f} ms over {len(served)} requests")
        check(cut_at is not None and cut_at < 4.5, f"cut by the 2 s header timeout: {cut_at}")
        check(max(served) < 0.5, f"others not delayed: {max(served):.3f}s")
        v = metric_values(curl(proxy.url("/metrics")).body)
        check(v["fusproxy_header_timeouts_total"] >= 1, "header timeout counted")


# ---- logs ----

class RecordingUpstream:
    """A stand-in upstream that records request headers and answers 500."""

    def __init__(self):
        self.headers = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                outer.headers.append(dict(self.headers))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = answer

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/"


def read_json_lines(path):
    with open(path, errors="replace") as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    parsed = []
    for l in lines:
        try:
            parsed.append(json.loads(l))
        except ValueError:
            raise Failure(f"a log line is not JSON: {l!r}")
        check(isinstance(parsed[-1], dict) and "ts" in parsed[-1] and "level" in parsed[-1],
              f"a log line lacks ts/level: {l!r}")
    return parsed


@case
def json_logs(paths):
    with tempfile.TemporaryDirectory() as d, RecordingUpstream() as upstream:
        log_file = os.path.join(d, "fusproxy.log")
        with Sim(paths) as sim, Proxy(paths, sim, extra=[
                "--log-format", "json", "--log-file", log_file, "--token", "hunter2hunter2",
                "--legacy-keys", "0123456789abcdef0123456789abcdef:0123456789abcdef"]) as proxy:
            auth = ["-H", "Authorization: Bearer hunter2hunter2"]
            r = curl(proxy.url(META), *auth, "-H", "X-Request-Id: obs-test-1")
            check(r.status == 200 and r.headers.get("x-request-id") == "obs-test-1",
                  f"the request id is echoed: {r!r}")
            r = curl(proxy.url("/firmware/SM-XXXX/SER/latest"), *auth)
            generated = r.headers.get("x-request-id")
            check(generated, "a request id is generated when none is sent")
        lines = read_json_lines(log_file)
        text = open(log_file).read()
        check("hunter2hunter2" not in text and "0123456789abcdef" not in text,
              "secrets never reach the log")
        start = [l for l in lines if "fusproxy starting" in l.get("msg", "")]
        check(start and "token=***" in start[0]["msg"] and "***custom***" in start[0]["msg"],
              f"start-up logs the config, masked: {start}")
        access = [l for l in lines if l.get("msg") == "access"]
        check(any(l.get("request_id") == "obs-test-1" and l.get("status") == 200 for l in access),
              f"the access line carries the request id: {access}")
        check(any(l.get("request_id") == generated for l in access), "generated id logged")
        # The request id also goes upstream, and upstream failures are logged with it.
        with Proxy(paths, None, extra=["--fus-url", upstream.base_url, "--cloud-url",
                                       upstream.base_url, "--fota-url", upstream.base_url,
                                       "--log-format", "json"]) as proxy:
            r = curl(proxy.url(META), "-H", "X-Request-Id: obs-upstream-7")
            check(r.status in (502, 503), f"a failing upstream: {r!r}")
            lines = read_json_lines(proxy.log_path)
        sent = [h.get("X-Request-Id") for h in upstream.headers]
        check(sent and all(s == "obs-upstream-7" for s in sent),
              f"X-Request-Id sent upstream on every request: {sent}")
        check(any(l.get("request_id") == "obs-upstream-7" and l.get("msg") != "access"
                  for l in lines), f"the resolver's lines carry the request id: {lines}")


@case
def log_reopen_on_sighup(paths):
    with tempfile.TemporaryDirectory() as d:
        log_file = os.path.join(d, "fusproxy.log")
        with Sim(paths) as sim, Proxy(paths, sim, extra=["--log-file", log_file]) as proxy:
            curl(proxy.url("/healthz"), "-H", "X-Request-Id: before-rotation")
            wait_until(lambda: "before-rotation" in open(log_file).read(), "first access line")
            os.rename(log_file, log_file + ".1")
            proxy.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: os.path.exists(log_file), "a new log file after SIGHUP")
            curl(proxy.url("/healthz"), "-H", "X-Request-Id: after-rotation")
            wait_until(lambda: "after-rotation" in open(log_file).read(), "new lines in new file")
            check(proxy.proc.poll() is None, "SIGHUP does not stop the service")
        old = open(log_file + ".1").read()
        check("before-rotation" in old and "after-rotation" not in old, "old file kept old lines")


# ---- graceful operations ----

@case
def graceful_shutdown(paths):
    with Sim(paths, faults="slow-first-byte=2s@inform") as sim, \
            Proxy(paths, sim, extra=["--shutdown-grace", "10"]) as proxy:
        out = tempfile.NamedTemporaryFile(delete=False)
        slow = subprocess.Popen(["curl", "-sS", "-o", out.name, "-w", "%{http_code}",
                                 proxy.url(META)], stdout=subprocess.PIPE, text=True)
        wait_until(lambda: metric_values(curl(proxy.url("/metrics")).body)
                   .get("fusproxy_requests_in_flight", 0) >= 2, "the slow request in flight")
        t0 = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: curl(proxy.url("/healthz"), timeout=2).status != 200,
                   "no longer accepting", timeout=5)
        status = slow.communicate(timeout=20)[0]
        check(status == "200", f"the in-flight request finished: {status}")
        check(json.load(open(out.name))["model"] == "SM-A207F", "with its whole answer")
        os.unlink(out.name)
        rc = proxy.proc.wait(timeout=15)
        print(f"exited {rc} {time.monotonic() - t0:.2f}s after SIGTERM")
        check(rc == 0, f"clean exit: {rc}")


@case
def graceful_shutdown_download(paths):
    with tempfile.TemporaryDirectory() as d, throttled_sim(paths, 1 << 20) as sim, \
            Proxy(paths, sim, extra=["--connections", "2", "--shutdown-grace", "30"]) as proxy:
        b = sim_build(sim, "SM-G990B", "BTU")  # 1.5 MB at 2 x 1 MB/s: about a second
        out = os.path.join(d, "fw.zip")
        client = start_download(proxy, b, out=out)
        wait_until(lambda: metric_values(curl(proxy.url("/metrics")).body)
                   .get("fusproxy_downloads_active", 0) >= 1, "the download streaming")
        proxy.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: curl(proxy.url("/healthz"), timeout=2).status != 200,
                   "no longer accepting", timeout=5)
        status = client.communicate(timeout=30)[0]
        check(status == "200", f"the in-flight download finished: {status}")
        check(os.path.getsize(out) == b["plain_size"], "whole")
        import zipfile
        with zipfile.ZipFile(out) as z:
            check(z.testzip() is None, "and correct")
        rc = proxy.proc.wait(timeout=15)
        check(rc == 0, f"clean exit: {rc}")


@case
def shutdown_grace_cuts(paths):
    with Sim(paths, faults="slow-first-byte=8s@inform") as sim, \
            Proxy(paths, sim, extra=["--shutdown-grace", "1"]) as proxy:
        slow = subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                 proxy.url(META)], stdout=subprocess.PIPE, text=True,
                                stderr=subprocess.DEVNULL)
        wait_until(lambda: metric_values(curl(proxy.url("/metrics")).body)
                   .get("fusproxy_requests_in_flight", 0) >= 2, "the slow request in flight")
        t0 = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        rc = proxy.proc.wait(timeout=15)
        took = time.monotonic() - t0
        slow.communicate(timeout=10)
        check(rc == 0 and took < 5, f"stopped after the 1 s grace: rc {rc}, {took:.2f}s")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--fusproxy")
    ap.add_argument("--fus-sim")
    ap.add_argument("--source-dir")
    ap.add_argument("--artifacts", default="test-artifacts")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("case", nargs="*")
    ARGS = ap.parse_args()
    if ARGS.list:
        print("\n".join(CASES))
        return 0
    paths = Paths(ARGS.fusproxy, ARGS.fus_sim, ARGS.source_dir)
    rc = 0
    for name in ARGS.case or list(CASES):
        try:
            CASES[name](paths)
            print(f"PASS {name}")
        except Skip as e:
            print(f"SKIP {name}: {e}")
            if len(ARGS.case) == 1:
                return SKIP
        except Exception:
            traceback.print_exc()
            print(f"FAIL {name}")
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
