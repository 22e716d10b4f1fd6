"""Shared pieces of the admin integration tests: a proxy with an admin token
and a policy, a small HTTP client for the admin API, and a background
client operation that may be held."""

from __future__ import annotations

import json
import pathlib
import threading
import time
import urllib.error
import urllib.request

from policy_helpers import PolicyProxy

TOKEN = "test-admin-token-0123456789"


class AdminProxy(PolicyProxy):
    """PolicyProxy with an admin token (none when token=None)."""

    def __init__(self, upstream: str, policy_yaml: str, token: str | None = TOKEN,
                 extra_yaml: str = "", admin_yaml: str = "", **kwargs):
        """`admin_yaml`: more keys of the admin section, one per line."""
        import tempfile

        self.token_dir = pathlib.Path(tempfile.mkdtemp(prefix="mg-admin-token-"))
        self.token = token
        self.token_file = self.token_dir / "admin.token"
        header = ""
        if token is not None:
            self.token_file.write_text(token + "\n")
            header = f"admin:\n  token_file: {self.token_file}\n"
            header += "".join(f"  {line}\n" for line in admin_yaml.splitlines() if line.strip())
        import textwrap

        text = header + textwrap.dedent(extra_yaml).strip() + "\n" + \
            textwrap.dedent(policy_yaml).strip() + "\n"
        super().__init__(upstream, text, **kwargs)
        # The harness may give the proxy its own token file on the command
        # line, which takes precedence over the config's.
        if getattr(self.proxy, "token_file", None) is not None:
            self.token = self.proxy.token
            self.token_file = self.proxy.token_file
            if token is None:
                self.token_file.write_text("")  # read per request: the API is off

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.admin_port}"

    def api(self, method: str, path: str, body=None, token: str | None = "default",
            headers: dict | None = None, raw: bytes | None = None, timeout: float = 10.0):
        """Returns (status, parsed JSON or text)."""
        return http(self.admin_url, method, path, body,
                    self.token if token == "default" else token, headers, raw, timeout)

    def ok(self, method: str, path: str, body=None, **kw):
        status, data = self.api(method, path, body, **kw)
        assert 200 <= status < 300, (method, path, status, data)
        return data

    def wait_for_holds(self, count: int = 1, timeout: float = 15.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            holds = self.ok("GET", "/api/holds")["holds"]
            if len(holds) >= count:
                return holds
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} hold(s) not pending after {timeout}s: {holds}\n"
                                     f"{self.log_text()[-5000:]}")
            time.sleep(0.05)


def http(base: str, method: str, path: str, body=None, token: str | None = None,
         headers: dict | None = None, raw: bytes | None = None, timeout: float = 10.0):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, payload, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, payload, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    text = payload.decode("utf-8", "replace")
    if "json" in ctype:
        return status, json.loads(text)
    return status, text


class Background:
    """Runs `call` on a thread; result() waits for it and re-raises its error."""

    def __init__(self, call):
        self._result = None
        self._error: BaseException | None = None
        self.started = time.monotonic()
        self.finished: float | None = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call):
        try:
            self._result = call()
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            self._error = e
        self.finished = time.monotonic()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self, timeout: float = 20.0):
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the operation did not finish within {timeout}s")
        if self._error is not None:
            raise self._error
        return self._result
