"""Headless Chromium driven over the DevTools protocol, Python standard library only.

Chromium's `--remote-debugging-pipe` speaks CDP as NUL-terminated JSON on file descriptors
3 (commands in) and 4 (answers and events out), so no WebSocket client is needed (Debian's
python3 has none offline). One page (target) per Browser; each method waits for its answer
with a deadline.
"""
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time


class BrowserError(Exception):
    pass


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, width=1280, height=1000, log_path=None, dark=False):
        exe = chromium_path()
        if not exe:
            raise BrowserError("chromium is not installed")
        self.profile = tempfile.mkdtemp(prefix="fusproxy-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Copies numbered above 4, so that dup2 onto 3 and 4 in the child always copies (and
        # clears close-on-exec) whatever numbers the pipes got.
        keep = []
        a, b = os.dup(to_child_r), os.dup(from_child_w)
        while a <= 4 or b <= 4:
            keep += [a, b]
            a, b = os.dup(a), os.dup(b)

        def child_fds():
            os.dup2(a, 3)
            os.dup2(b, 4)

        argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
                "about:blank"]
        self._log = open(log_path or os.devnull, "w")
        self.proc = subprocess.Popen(argv, preexec_fn=child_fds, close_fds=False,
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        for fd in [to_child_r, from_child_w, a, b] + keep:
            os.close(fd)
        self._buf = b""
        self._id = 0
        self.events = []
        self.session = None
        self.auth_prompts = 0
        try:
            target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
            self.session = self.call("Target.attachToTarget",
                                     {"targetId": target["targetId"], "flatten": True},
                                     session=False)["sessionId"]
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Network.enable")
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            if dark:
                self.call("Emulation.setEmulatedMedia",
                          {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        except Exception:
            self.close()
            raise

    # ---- protocol ----

    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("no answer from chromium in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise BrowserError(f"chromium exited (rc {self.proc.poll()})")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def _send(self, method, params=None, session=True):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        return self._id

    def call(self, method, params=None, session=True, timeout=30):
        mine = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == mine:
                if "error" in m:
                    raise BrowserError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "id" not in m and not self._answer_prompt(m):
                self.events.append(m)

    # ---- HTTP authentication: what a person does in the browser's own prompt ----

    def answer_auth_prompts(self, username=None, password=None):
        """From now on, answer the browser's HTTP authentication prompt (a 401 with a Basic
        challenge) with these credentials, or cancel it (None) as a person without them
        would: the browser then shows the 401's own page."""
        self._credentials = None if username is None else (username, password)
        self.call("Fetch.enable", {"handleAuthRequests": True, "patterns": [{"urlPattern": "*"}]})

    def _answer_prompt(self, m):
        method, p = m.get("method"), m.get("params", {})
        if method == "Fetch.requestPaused":
            self._send("Fetch.continueRequest", {"requestId": p["requestId"]})
            return True
        if method == "Fetch.authRequired":
            self.auth_prompts += 1
            creds = getattr(self, "_credentials", None)
            answer = ({"response": "ProvideCredentials", "username": creds[0],
                       "password": creds[1]} if creds else {"response": "CancelAuth"})
            self._send("Fetch.continueWithAuth",
                       {"requestId": p["requestId"], "authChallengeResponse": answer})
            return True
        return False

    def wait_event(self, method, timeout=30, match=lambda params: True):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method and match(e.get("params", {})):
                    return self.events.pop(i)["params"]
            m = self._read_message(deadline)
            if "id" not in m and not self._answer_prompt(m):
                self.events.append(m)

    # ---- page ----

    def navigate(self, url, timeout=30):
        """Loads `url` and waits for its load event; returns the main document's status."""
        self.events.clear()
        r = self.call("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise BrowserError(f"navigate {url}: {r['errorText']}")
        if not r.get("loaderId"):
            return None  # same document (only the #fragment changed): no load
        self.wait_event("Page.loadEventFired", timeout)
        return self.document_status(r.get("loaderId"))

    def document_status(self, loader_id):
        for e in self.events:
            p = e.get("params", {})
            if (e.get("method") == "Network.responseReceived" and p.get("type") == "Document"
                    and (loader_id is None or p.get("loaderId") == loader_id)):
                return p["response"]["status"]
        return None

    def evaluate(self, expression, timeout=30):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, what, timeout=20, interval=0.1):
        """Polls a JS expression until it is truthy (with a deadline); returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.evaluate(expression)
            if last:
                return last
            time.sleep(interval)
        raise BrowserError(f"timed out waiting for {what} (last: {last!r})")

    KEYS = {"Tab": 9, "Enter": 13, "Escape": 27, "Space": 32}

    def press(self, key, shift=False):
        """A key press as the keyboard sends it (Tab moves focus, Enter submits/follows)."""
        code = self.KEYS[key]
        down = {"type": "keyDown", "key": " " if key == "Space" else key, "code": key,
                "windowsVirtualKeyCode": code, "modifiers": 8 if shift else 0}
        if key == "Enter":
            down["text"] = "\r"
        self.call("Input.dispatchKeyEvent", down)
        self.call("Input.dispatchKeyEvent", {**down, "type": "keyUp", "text": ""})

    def type(self, text):
        self.call("Input.insertText", {"text": text})

    def active(self):
        """id (or tag and class) of the focused element."""
        return self.evaluate("(e => e.id || e.tagName.toLowerCase() + '.' + e.className)"
                             "(document.activeElement)")

    def dom(self):
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))
        return path

    def console_errors(self):
        return [e["params"] for e in self.events if e.get("method") == "Runtime.exceptionThrown"]

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.call("Browser.close", session=False, timeout=5)
                except Exception:
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._log.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
