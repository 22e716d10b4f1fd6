"""An unreachable upstream, told truthfully: build/mongoguard in front of a
port where nothing listens. Clients are closed; one warn line says so (at
most one every 10 s, with the count of failed connects since the last);
mongoguard_upstream_reachable is 0; /readyz turns 503 with the reason after
admin.unready_after_failures (3) failed connects in a row. Once something
listens on that port, the proxy's own probe (every 5 s while connects fail)
finds it, without any client, and /readyz is ready again."""

from __future__ import annotations

import re

import pytest

import wire
from admin_helpers import http
from fake_upstream import FakeUpstream
from harness import PROXY_BIN, ProxyProcess, free_port
from hold_helpers import wait_until

needs_proxy = pytest.mark.skipif(not PROXY_BIN.exists(), reason=f"{PROXY_BIN} not built")

WARN = "unreachable: {n} client connect(s) failed since the last such line"


def readyz(proxy: ProxyProcess, token: bool = True) -> tuple[int, str]:
    """/readyz with the admin token (the reason), or without (only ready or not)."""
    return http(f"http://127.0.0.1:{proxy.admin_port}", "GET", "/readyz",
                token=proxy.token if token else None)


def failed_client(proxy: ProxyProcess) -> None:
    """One client the proxy closes because it cannot reach the upstream."""
    with wire.connect(proxy.port) as s:
        how, data = wire.wait_closed(s, timeout=10)
    assert how in ("eof", "reset"), (how, data)


def warn_lines(proxy: ProxyProcess) -> list[str]:
    return [line for line in proxy.log_text().splitlines()
            if " warning " in line and "client connect(s) failed since the last such line" in line]


@needs_proxy
def test_unreachable_upstream_warns_once_gauges_zero_and_is_unready_until_it_listens():
    dead = free_port()  # nothing listens here (yet)
    with ProxyProcess(f"mongodb://127.0.0.1:{dead}") as proxy:
        # The harness's own check that the port listens was a client too.
        wait_until(lambda: warn_lines(proxy), 10, "the first warn line")
        failures = int(proxy.metrics()["mongoguard_upstream_connect_failures_total"])
        while failures < 2:
            failed_client(proxy)
            failures += 1
        # Two failures in a row: the proxy still ready (3 needed).
        assert readyz(proxy) == (200, "ready\n")
        failed_client(proxy)
        failures += 1
        lines = warn_lines(proxy)
        assert len(lines) == 1, lines
        assert f"upstream 127.0.0.1:{dead} {WARN.format(n=1)}" in lines[0], lines
        assert "last error: Connection refused" in lines[0], lines
        metrics = proxy.metrics()
        assert metrics["mongoguard_upstream_reachable"] == 0
        assert metrics["mongoguard_upstream_connect_failures_total"] == failures
        status, text = readyz(proxy)
        assert status == 503, text
        m = re.fullmatch(rf"not ready: upstream 127\.0\.0\.1:{dead} unreachable \((\d+) consecutive "
                         r"failed connects\): Connection refused\n", text)
        assert m and int(m.group(1)) >= 3, text  # the probe may have added its own
        # Without a token a probe learns only that it is not ready, not which host.
        assert readyz(proxy, token=False) == (503, "not ready\n")
        # Those held back by the rate limit are said 10 s after the first line.
        wait_until(lambda: len(warn_lines(proxy)) == 2, 20, "the second warn line")
        assert WARN.format(n=failures - 1) in warn_lines(proxy)[1]

        # Something listens there now; no client comes, the probe finds it.
        with FakeUpstream(port=dead):
            wait_until(lambda: readyz(proxy) == (200, "ready\n"), 15, "/readyz ready again")
            assert proxy.metrics()["mongoguard_upstream_reachable"] == 1
            assert f"upstream 127.0.0.1:{dead} reachable again" in proxy.log_text()


@needs_proxy
def test_unready_after_failures_zero_keeps_it_ready(tmp_path):
    dead = free_port()
    config = tmp_path / "mongoguard.yaml"
    config.write_text("admin:\n  unready_after_failures: 0\nrules: []\n")
    with ProxyProcess(f"mongodb://127.0.0.1:{dead}", "--config", str(config)) as proxy:
        for _ in range(4):
            failed_client(proxy)
        wait_until(lambda: proxy.metrics()["mongoguard_upstream_connect_failures_total"] >= 4, 5,
                   "four failed connects")
        assert proxy.metrics()["mongoguard_upstream_reachable"] == 0
        assert readyz(proxy) == (200, "ready\n")
