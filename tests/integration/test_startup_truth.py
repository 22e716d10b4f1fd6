"""What start-up says when it cannot do what it was told: a listen address
that is taken names the address and what set it; scripts/run.sh refuses
an embedded-backend port that something else already listens on, naming
the variable that moves it, instead of putting that something behind the
proxy."""

from __future__ import annotations

import os
import socket
import subprocess

from harness import PROXY_BIN, ROOT


def taken_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def test_a_taken_listen_address_names_itself_and_its_key(tmp_path):
    with taken_port() as busy:
        port = busy.getsockname()[1]
        r = subprocess.run([str(PROXY_BIN), "--listen", f"127.0.0.1:{port}",
                            "--upstream", "mongodb://127.0.0.1:1"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1, r.stderr
        assert (f"cannot start: cannot listen on 127.0.0.1:{port} (--listen): "
                "Address already in use") in r.stderr, r.stderr
        config = tmp_path / "mongoguard.yaml"
        config.write_text(f"listen: 127.0.0.1:{port}\nupstream: mongodb://127.0.0.1:1\n")
        r = subprocess.run([str(PROXY_BIN), "--config", str(config)],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port} (listen in {config}): " in r.stderr, r.stderr


def test_admin_listen_taken_names_admin_listen(tmp_path):
    with taken_port() as busy:
        port = busy.getsockname()[1]
        token = tmp_path / "admin.token"
        token.write_text("a-token-of-twenty-chars\n")
        config = tmp_path / "mongoguard.yaml"
        config.write_text(f"admin:\n  listen: 127.0.0.1:{port}\n  token_file: {token}\n")
        listen = socket.socket()
        listen.bind(("127.0.0.1", 0))
        free = listen.getsockname()[1]
        listen.close()
        r = subprocess.run([str(PROXY_BIN), "--config", str(config), "--listen",
                            f"127.0.0.1:{free}", "--upstream", "mongodb://127.0.0.1:1"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1
        assert (f"cannot listen on 127.0.0.1:{port} (admin.listen in {config}): "
                "Address already in use") in r.stderr, r.stderr


def test_run_sh_refuses_a_backend_port_in_use(tmp_path):
    with taken_port() as busy:
        port = busy.getsockname()[1]
        env = dict(os.environ, MONGOGUARD_BACKEND_PORT=str(port),
                   MONGOGUARD_DATA=str(tmp_path / "data"),
                   MONGOGUARD_AUDIT_PATH=str(tmp_path / "audit.jsonl"),
                   MONGOGUARD_JOURNAL_PATH=str(tmp_path / "journal.db"),
                   MONGOGUARD_ADMIN_TOKEN_FILE=str(tmp_path / "admin.token"))
        r = subprocess.run(["bash", str(ROOT / "scripts" / "run.sh"), "--listen",
                            "127.0.0.1:1", "--admin-listen", "127.0.0.1:2"],
                           capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
        assert r.returncode == 2, r.stderr[-3000:]
        assert (f"scripts/run.sh: 127.0.0.1:{port}, the embedded backend's port, is already in "
                "use; set MONGOGUARD_BACKEND_PORT to a free port, or give --upstream") in r.stderr
        assert "admin page: http://127.0.0.1:2/" in r.stderr, "the address it was given"
        assert not (tmp_path / "data" / "ferretdb").exists(), "nothing started"
