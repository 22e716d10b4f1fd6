"""Fleet mode over rediss://: what the proxy refuses and what it reloads.

The shared-budget tests of test_fleet.py and test_fleet_ceiling.py run over
TLS already (their `redis` fixture's "tls" case). Here: a Redis server whose
certificate the proxy must not trust (another CA, another name), a proxy
that shows no client certificate or the wrong password, a password file the
proxy cannot use, and a rotated password and a broken client certificate at
reload. In every refused case the proxy keeps serving with its local budgets
and says why in its log; none of it is a silent plain-text fallback, since
the server listens for TLS only.
"""

from __future__ import annotations

import pathlib
import secrets
import signal
import subprocess

import pytest

from harness import PROXY_BIN, free_port
from hold_helpers import GuardedProxy, wait_until
from test_fleet import REDIS_SERVER, REDIS_USER, RedisServer

pytestmark = pytest.mark.skipif(not pathlib.Path(REDIS_SERVER).exists(),
                                reason="redis-server is not installed (scripts/deps.sh test)")

REDIS_CLI = pathlib.Path(REDIS_SERVER).with_name("redis-cli")


@pytest.fixture
def redis():
    server = RedisServer(tls=True)
    try:
        yield server
    finally:
        server.stop()


def policy(redis: RedisServer, fleet_yaml: str, url: str | None = None) -> str:
    return f"""
        fleet:
          redis: "{url or redis.url}"
          name: tls-0
          timeout: 500ms
{fleet_yaml}
        rules:
          - name: fleet-budget
            match: {{ namespace: "fleet_tls.*", operations: [delete] }}
            limit: {{ documents: 5, per: 1m }}
            action: block
    """


def redis_cli(redis: RedisServer, *command: str) -> str:
    """A command to the TLS server as its ACL user (password from the file)."""
    d = redis.dir
    r = subprocess.run(
        [str(REDIS_CLI), "-p", str(redis.port), "--tls", "--cacert", str(d / "ca.pem"),
         "--cert", str(d / "proxy.pem"), "--key", str(d / "proxy.key"), "--user", REDIS_USER,
         "--pass", redis.password_file.read_text().strip(), "--no-auth-warning", *command],
        capture_output=True, text=True, timeout=15)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def connected(gp: GuardedProxy) -> float:
    return gp.admin.metrics().get("mongoguard_fleet_connected", -1)


def test_fleet_over_tls_connects_and_its_keys_are_in_redis(backend, redis):
    with GuardedProxy(backend.upstream, policy(redis, redis.fleet_yaml())) as gp:
        gp.wait_for_log("fleet: connected to redis", timeout=15)
        assert connected(gp) == 1
        client = gp.client()
        client.fleet_tls.c.insert_many([{"_id": i} for i in range(3)])
        assert client.fleet_tls.c.delete_one({"_id": 0}).deleted_count == 1
        # The count went to the TLS server: its keys are there.
        keys = redis_cli(redis, "--scan", "--pattern", "mongoguard:budget:*")
        assert "fleet-budget" in keys, keys
        # The log names the server without the user's secret.
        assert redis.password not in gp.log_text()
        client.drop_database("fleet_tls")


@pytest.mark.parametrize("case, fleet_yaml, says", [
    ("another CA", dict(ca="other-ca.pem"), "certificate verify failed"),
    ("another name", dict(server_name="redis.example"),
     "the certificate does not name 'redis.example'"),
    ("no client certificate", dict(cert="", key=""), None),
    ("wrong password", None, "AUTH refused: WRONGPASS"),
])
def test_a_server_or_proxy_that_does_not_prove_itself_is_refused(backend, redis, case,
                                                                 fleet_yaml, says):
    if fleet_yaml is None:  # the right TLS, the wrong password
        wrong = redis.dir / "wrong.password"
        wrong.write_text(secrets.token_hex(16) + "\n")
        text = redis.fleet_yaml().replace(str(redis.password_file), str(wrong))
    else:
        text = redis.fleet_yaml(**fleet_yaml)
    with GuardedProxy(backend.upstream, policy(redis, text)) as gp:
        log = gp.wait_for_log("enforcing local budgets, retrying", timeout=15)
        line = next(x for x in log.splitlines() if "enforcing local budgets, retrying" in x)
        # The URL's user part is never printed.
        assert f"fleet: redis rediss://***@127.0.0.1:{redis.port} unreachable" in line, line
        if says:
            assert says in line, line
        else:
            # TLS 1.3 tells the client of a missing certificate after its
            # handshake: the first command's read or the handshake fails.
            assert "TLS handshake" in line or "read failed" in line or "closed" in line, line
        assert connected(gp) == 0
        # Still judged, by the local budget: the client is served.
        client = gp.client()
        client.fleet_tls.c.insert_one({"_id": 1})
        assert client.fleet_tls.c.delete_one({"_id": 1}).deleted_count == 1
        client.drop_database("fleet_tls")
        # Redis never saw a count from it.
        assert redis_cli(redis, "--scan", "--pattern", "mongoguard:*") == ""


@pytest.mark.parametrize("content, says", [
    ("short\n", "the password in {path} is 5 characters long"),
    ("one-password-here\nand-another-line\n", "has more than one non-empty line"),
    ("", "the password file {path} is empty"),
])
def test_an_unusable_password_file_stops_the_start(backend, redis, tmp_path, content, says):
    path = tmp_path / "redis.password"
    path.write_text(content)
    config = tmp_path / "mongoguard.yaml"
    config.write_text(
        f"fleet:\n  redis: \"{redis.url}\"\n  name: tls-0\n  password_file: {path}\n"
        f"  tls: {{ ca: {redis.dir / 'ca.pem'} }}\n")
    r = subprocess.run([str(PROXY_BIN), "--config", str(config), "--upstream", backend.upstream,
                        "--listen", f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=15)
    assert r.returncode == 2, r
    assert f"{config}:4:18: fleet.password_file: " in r.stderr, r.stderr
    assert says.format(path=path) in r.stderr, r.stderr


def test_a_rotated_password_and_a_broken_certificate_at_reload(backend, redis):
    live = redis.dir / "live"
    live.mkdir()
    for name in ("proxy.pem", "proxy.key"):
        (live / name).write_bytes((redis.dir / name).read_bytes())
    password_file = live / "redis.password"
    password_file.write_text(redis.password + "\n")
    text = (redis.fleet_yaml(cert=str(live / "proxy.pem"), key=str(live / "proxy.key"))
            .replace(str(redis.password_file), str(password_file)))
    with GuardedProxy(backend.upstream, policy(redis, text)) as gp:
        gp.wait_for_log("fleet: connected to redis", timeout=15)
        # Rotation: Redis takes the new password, the file is rewritten (the
        # proxy reloads on its own), then Redis drops the proxy's connections.
        new = secrets.token_hex(16)
        redis_cli(redis, "ACL", "SETUSER", REDIS_USER, "resetpass", f">{new}")
        redis.password_file.write_text(new + "\n")  # for redis_cli
        reloads = gp.log_text().count("policy reloaded")
        password_file.write_text(new + "\n")
        wait_until(lambda: gp.log_text().count("policy reloaded") > reloads, 10,
                   "the reload after the password file changed")
        redis_cli(redis, "CLIENT", "KILL", "USER", REDIS_USER, "SKIPME", "yes")
        wait_until(lambda: gp.log_text().count("fleet: connected to redis") >= 2, 15,
                   "the fleet to reconnect with the new password")
        assert connected(gp) == 1
        assert "WRONGPASS" not in gp.log_text()

        # A client certificate that cannot be loaded is refused at reload;
        # the running one stays and the fleet stays connected.
        refused = gp.log_text().count("reload (")
        (live / "proxy.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
        gp.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "fleet.tls.cert: cannot load" in gp.log_text(), 10,
                   "the reload to be refused")
        assert gp.log_text().count("reload (") > refused
        redis_cli(redis, "CLIENT", "KILL", "USER", REDIS_USER, "SKIPME", "yes")
        wait_until(lambda: gp.log_text().count("fleet: connected to redis") >= 3, 15,
                   "the fleet to reconnect with the certificate it had")
        assert connected(gp) == 1
