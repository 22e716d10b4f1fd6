"""The shipped deployments start: deploy/Dockerfile's default command,
deploy/compose.yaml's mongoguard service and deploy/kubernetes/sidecar.yaml's
mongoguard container, each run with the command line, environment and
configuration its file gives.

No container engine runs here, so each file is read with the parser its tool
uses (scripts/deploylint -json-out: BuildKit's, compose-go's, the k8s.io/api
types) and only what cannot exist on this machine is rewritten, by the tables
below:

- container paths (the image's own folders, each file's mounts) become
  folders of a temporary "container file system" holding the same files: the
  policy text from the file (its container paths rewritten the same way), a
  generated admin token, and for compose the certificate its own one-shot
  service makes (its command run here, with its mount rewritten);
- /usr/bin/mongoguard is build/mongoguard, --upstream the test backend;
- the listen addresses become free loopback ports (0.0.0.0 is 127.0.0.1:
  this machine's loopback stands in for the container's interface).

That last rewrite would hide the one thing these files got wrong (an admin
endpoint on 0.0.0.0 without TLS, which mongoguard refuses), so each
deployment is also started as written, addresses and ports untouched, in a
network namespace of its own (`unshare --net`, where 0.0.0.0 reaches no one):
it must get as far as listening, with the admin endpoint's scheme the file
means. Mutated copies with the admin endpoint exposed without TLS go through
that same start and must exit 2 with mongoguard's refusal, so the check is
known to bite.

Then, on this machine's loopback: pymongo inserts and finds a document
through the listen port, /readyz answers 200 (over HTTPS checked against the
generated certificate where the file uses TLS), and the sidecar's exec
probes, run as written (addresses mapped), exit 0 and the readiness probe
fails once the upstream is gone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pymongo
import pytest

import harness
from harness import PROXY_BIN, ROOT, ProxyProcess

DEPLOY = ROOT / "deploy"
START_TIMEOUT = 20  # seconds for a start to reach "listening on" or to exit
REFUSAL = "is not a loopback address; it may listen there only with admin.tls"

# What the image itself holds (the final stage of deploy/Dockerfile): the
# binary, and the folders the package and the Dockerfile's RUN make.
IMAGE_BINARY = {"/usr/bin/mongoguard": PROXY_BIN}
# The package installs its default policy here (CMakeLists.txt's install(FILES ...)).
PACKAGE_POLICY = "/etc/mongoguard/policy.yaml"


def package_policy() -> pathlib.Path:
    """The file CMakeLists.txt installs as /etc/mongoguard/policy.yaml."""
    text = (ROOT / "CMakeLists.txt").read_text()
    m = re.search(r"install\(FILES (\S+\.yaml) DESTINATION /etc/mongoguard\)", text)
    assert m, "CMakeLists.txt installs no policy into /etc/mongoguard"
    return ROOT / m.group(1)


def image_folders() -> list[str]:
    """The folders the Dockerfile's final stage makes (`mkdir -p ...`)."""
    text = (DEPLOY / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM "):]
    m = re.search(r"mkdir -p ((?:/[\w/.-]+ ?)+)", final)
    assert m, "the Dockerfile's final stage makes no folders"
    return m.group(1).split()


@dataclasses.dataclass
class Deployment:
    """What one file makes the container run, in container terms."""
    name: str
    argv: list[str]
    env: dict[str, str]
    # Container path (folder or file) -> what is there: a folder's files
    # {name: text}, or for a file its text. Paths are rewritten in .yaml texts.
    mounts: dict[str, dict[str, str] | str]
    # One-shot commands (compose) run first, with their own mounts: they fill
    # the named volumes, which are shared by name.
    init: list[tuple[list[str], dict[str, str]]] = dataclasses.field(default_factory=list)
    volume_of: dict[str, str] = dataclasses.field(default_factory=dict)  # target -> volume
    probes: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def config_text(self) -> str:
        """The configuration file --config names, as the container sees it."""
        path = option(self.argv, "--config")
        if isinstance(self.mounts.get(path), str):
            return self.mounts[path]
        return self.mounts[os.path.dirname(path)][os.path.basename(path)]

    def admin_tls(self, deploylint, tmp: pathlib.Path) -> dict | None:
        """admin.tls of that configuration (None without one)."""
        copy = tmp / f"{self.name}-config.yaml"
        copy.write_text(self.config_text())
        return (parsed(deploylint, "yaml", copy, tmp).get("admin") or {}).get("tls")


def parsed(deploylint: pathlib.Path, kind: str, path: pathlib.Path, tmp: pathlib.Path,
           strict: bool = True):
    """The file as deploylint read it; `strict`: and it passes the lint (a
    mutated copy need not: its probes may name another address)."""
    out = tmp / f"{kind}-{path.name}.json"
    r = subprocess.run([str(deploylint), kind, str(path), "-json-out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 or (not strict and out.exists()), r.stdout + r.stderr
    return json.loads(out.read_text())


def image(deploylint, dockerfile: pathlib.Path, tmp) -> dict:
    model = parsed(deploylint, "dockerfile", dockerfile, tmp)
    assert model["entrypoint"] == ["/usr/bin/mongoguard"], model
    return model


def image_mounts() -> dict:
    """The image's file system as far as mongoguard sees it: the package's
    policy (the postinst's token is removed by the Dockerfile) and its folders."""
    mounts: dict = {folder: {} for folder in image_folders()}
    mounts["/etc/mongoguard"] = {"policy.yaml": package_policy().read_text()}
    return mounts


def new_token() -> str:
    return secrets.token_urlsafe(24)  # printable ASCII, one word, 32 characters


def docker(deploylint, tmp, dockerfile: pathlib.Path = DEPLOY / "Dockerfile") -> Deployment:
    """`docker run` with the default command; the token mounted where the
    image's MONGOGUARD_ADMIN_TOKEN_FILE says (as the Dockerfile's comment shows)."""
    model = image(deploylint, dockerfile, tmp)
    token = model["env"]["MONGOGUARD_ADMIN_TOKEN_FILE"]
    mounts = image_mounts()
    mounts[os.path.dirname(token)] = {os.path.basename(token): new_token() + "\n"}
    return Deployment("Dockerfile", model["entrypoint"] + model["cmd"], dict(model["env"]), mounts)


def kubernetes(deploylint, tmp, manifest: pathlib.Path = DEPLOY / "kubernetes" / "sidecar.yaml",
               strict: bool = True) -> Deployment:
    docs = parsed(deploylint, "kubernetes", manifest, tmp, strict)
    model = image(deploylint, DEPLOY / "Dockerfile", tmp)  # image: mongoguard:latest
    config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [guard] = [c for c in pod["containers"] if c["name"] == "mongoguard"]
    # The Secret is made by the kubectl command the file shows: its key, our token.
    secret_keys = dict(re.findall(r"kubectl create secret generic (\S+) --from-literal=([\w.-]+)=",
                                  manifest.read_text()))
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = image_mounts()
    for m in guard["volumeMounts"]:
        v = volumes[m["name"]]
        if "configMap" in v:
            mounts[m["mountPath"]] = dict(config_maps[v["configMap"]["name"]]["data"])
        elif "secret" in v:
            mounts[m["mountPath"]] = {secret_keys[v["secret"]["secretName"]]: new_token() + "\n"}
        else:
            assert "emptyDir" in v, v
            mounts[m["mountPath"]] = {}
    env = dict(model["env"])
    env.update({e["name"]: e["value"] for e in guard.get("env", [])})
    argv = guard.get("command") or model["entrypoint"]
    argv = argv + (guard["args"] if "args" in guard else model["cmd"])
    probes = {kind: guard[kind]["exec"]["command"] for kind in ("readinessProbe", "livenessProbe")
              if "exec" in guard.get(kind, {})}
    return Deployment("kubernetes", argv, env, mounts, probes=probes)


def compose(deploylint, tmp, compose_file: pathlib.Path = DEPLOY / "compose.yaml") -> Deployment:
    project = parsed(deploylint, "compose", compose_file, tmp)
    services = project["services"]
    guard = services["mongoguard"]
    assert guard["build"]["dockerfile"].endswith("deploy/Dockerfile"), guard["build"]
    model = image(deploylint, DEPLOY / "Dockerfile", tmp)
    mounts = image_mounts()
    volume_of = {}
    for v in guard.get("volumes", []):
        if v["type"] == "bind":
            source = pathlib.Path(v["source"])
            mounts[v["target"]] = source.read_text() if source.is_file() else {
                p.name: p.read_text() for p in source.iterdir() if p.is_file()}
        else:
            assert v["type"] == "volume", v
            mounts[v["target"]] = {}
            volume_of[v["target"]] = v["source"]
    init = []
    for name, dep in (guard.get("depends_on") or {}).items():
        if dep["condition"] == "service_completed_successfully":
            s = services[name]
            argv = (s.get("entrypoint") or []) + s["command"]
            init.append((argv, {v["target"]: v["source"] for v in s.get("volumes", [])
                                if v["type"] == "volume"}))
    env = dict(model["env"])
    env.update({k: v for k, v in (guard.get("environment") or {}).items() if v is not None})
    argv = (guard.get("entrypoint") or model["entrypoint"]) + (guard.get("command") or model["cmd"])
    return Deployment("compose", argv, env, mounts, init=init, volume_of=volume_of)


# ---- the container file system, the rewrites ----

def path_rewriter(table: dict[str, pathlib.Path]):
    """Replaces every container path that is, or lies under, a key of
    `table` (longest first, whole path components) with the host path."""
    keys = sorted(table, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./])(" + "|".join(re.escape(k) for k in keys) +
                         r")(?=/|$|[^\w.-])")
    return lambda text: pattern.sub(lambda m: str(table[m.group(1)]), text)


def option(argv: list[str], name: str) -> str:
    assert name in argv, f"{name} not on the command line {argv}"
    return argv[argv.index(name) + 1]


class Container:
    """A deployment laid out on this machine: its files under `root`, its
    command line and environment rewritten to them."""

    def __init__(self, d: Deployment, root: pathlib.Path, upstream: str):
        self.d = d
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        volumes = root / "volumes"
        table: dict[str, pathlib.Path] = dict(IMAGE_BINARY)
        for target in d.mounts:
            if target in d.volume_of:
                table[target] = volumes / d.volume_of[target]
            else:
                table[target] = root / "fs" / target.lstrip("/")
        self.rewrite = path_rewriter(table)
        for target, content in d.mounts.items():
            host = table[target]
            if isinstance(content, str):
                host.parent.mkdir(parents=True, exist_ok=True)
                host.write_text(self._text(target, content))
            else:
                host.mkdir(parents=True, exist_ok=True)
                for name, text in content.items():
                    (host / name).write_text(self._text(name, text))
        for argv, own in d.init:  # compose's one-shot services, with their own mounts
            for volume in own.values():
                (volumes / volume).mkdir(parents=True, exist_ok=True)
            mapped = [path_rewriter({t: volumes / v for t, v in own.items()})(a) for a in argv]
            r = subprocess.run(mapped, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, (mapped, r.stdout, r.stderr)
        self.argv = [self.rewrite(a) for a in d.argv]
        self.argv[self.argv.index("--upstream") + 1] = upstream
        self.env = {k: self.rewrite(v) for k, v in d.env.items()}
        self.listen = option(d.argv, "--listen")
        self.admin = option(d.argv, "--admin-listen")

    def _text(self, name: str, text: str) -> str:
        return self.rewrite(text) if name.endswith(".yaml") else text

    def process_env(self) -> dict[str, str]:
        """This machine's environment without mongoguard's variables, plus the container's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONGOGUARD_")}
        env.update(self.env)
        return env

    def file(self, container_path: str) -> pathlib.Path:
        return pathlib.Path(self.rewrite(container_path))


class Started(ProxyProcess):
    """The deployment's mongoguard: ProxyProcess's log, stop and sanitizer
    checks, with the command line the file gives."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: pathlib.Path,
                 port: int | None = None):
        self.port, self.admin_port = port, None
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "mongoguard.log"
        self._log = open(self.log_path, "wb")
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_started(self) -> str:
        """The log once mongoguard says it listens; fails if it exits first."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            text = self.log_text()
            if "listening on" in text:
                return text
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"{self.argv} did not start (exit {self.proc.returncode}):\n"
                             f"{self.log_text()}")

    def __exit__(self, *exc):
        self.stop()


def as_written(c: Container, tag: str) -> Started:
    """The command line as written (paths and upstream rewritten, addresses
    untouched) in a network namespace of its own: nothing outside it can
    reach what it binds."""
    unshare = ["unshare", "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    return Started(unshare + c.argv, c.process_env(), c.root / f"as-written-{tag}")


def on_loopback(c: Container, tag: str) -> tuple[Started, dict[str, str]]:
    """The command line with its listen addresses on free loopback ports.
    Returns the process and the address map (as written -> here)."""
    addresses = {}
    argv = list(c.argv)
    for flag in ("--listen", "--admin-listen"):
        written = option(c.d.argv, flag)
        host, _, _ = written.rpartition(":")
        host = "127.0.0.1" if host == "0.0.0.0" else host
        ip = socket.gethostbyname(host)
        assert ip.startswith("127."), f"{flag} {written}: not loopback on this machine"
        addresses[written] = f"{host}:{harness.free_port()}"
        argv[argv.index(flag) + 1] = addresses[written]
    p = Started(argv, c.process_env(), c.root / f"loopback-{tag}",
                port=int(addresses[c.listen].rpartition(":")[2]))
    try:
        harness.wait_for_port(p.port, p.proc, timeout=START_TIMEOUT)
    except Exception:
        p.stop()
        raise AssertionError(f"{argv} did not start:\n{p.log_text()}")
    return p, addresses


def exited(p: Started) -> int | None:
    try:
        return p.proc.wait(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None


def get(url: str, ca: pathlib.Path | None = None) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def peer_names(address: str, ca: pathlib.Path) -> set[str]:
    """The subjectAltName entries of the certificate `address` shows, verified against `ca`."""
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return {value for _, value in tls.getpeercert()["subjectAltName"]}


def deployment(kind: str, deploylint, tmp) -> Deployment:
    loaders = {"Dockerfile": docker, "compose": compose, "kubernetes": kubernetes}
    return loaders[kind](deploylint, tmp)


# ---- the tests ----

@pytest.mark.parametrize("kind", ["Dockerfile", "compose", "kubernetes"])
def test_starts_as_written(kind, deploylint, backend, tmp_path, db_name):
    d = deployment(kind, deploylint, tmp_path)
    c = Container(d, tmp_path / "container", backend.upstream)
    tls = d.admin_tls(deploylint, tmp_path)  # as the file's configuration gives it
    scheme = "https" if tls else "http"
    if kind == "kubernetes":
        assert set(d.probes) == {"readinessProbe", "livenessProbe"}, d.probes

    with as_written(c, "1") as p:
        log = p.wait_started()
        assert f"listening on {c.listen}," in log, log
        assert f"admin endpoint on {scheme}://{c.admin}/" in log, log
        assert p.proc.poll() is None

    p, addresses = on_loopback(c, "1")
    with p:
        client = pymongo.MongoClient(f"mongodb://{addresses[c.listen]}/?directConnection=true",
                                     serverSelectionTimeoutMS=15_000)
        direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=15_000)
        try:
            doc = {"_id": kind, "file": kind, "n": 1}
            client[db_name].started.insert_one(doc)
            assert client[db_name].started.find_one({"_id": kind}) == doc
            assert direct[db_name].started.count_documents({"_id": kind}) == 1  # it went through
        finally:
            client.close()
            direct.drop_database(db_name)  # the policy blocks drops through the proxy
            direct.close()

        admin = addresses[c.admin]
        # A self-signed certificate is its own CA: the cert file is what clients trust.
        ca = c.file(tls["cert"]) if tls else None
        assert get(f"{scheme}://{admin}/readyz", ca) == (200, "ready\n")
        if tls:
            # It names the host the demo uses and the published port's.
            names = peer_names(admin, ca)
            assert {"mongoguard", "localhost", "127.0.0.1"} <= names, names
            with pytest.raises(OSError):  # no plain HTTP beside it (URLError, reset)
                urllib.request.urlopen(f"http://{admin}/readyz", timeout=5)
        for probe, verb, answer in (("readinessProbe", "ready", "ready\n"),
                                    ("livenessProbe", "alive", "ok\n")):
            if probe not in d.probes:
                continue
            command = probe_command(d, probe, addresses)
            assert f"http://{addresses[c.admin]}" in command, command
            assert command[-1] == verb, command
            r = subprocess.run(command, capture_output=True, text=True, timeout=10,
                               env=c.process_env())
            assert r.returncode == 0, (probe, command, r.stdout, r.stderr)
            assert r.stdout == answer, r.stdout
        assert p.proc.poll() is None, p.log_text()


def probe_command(d: Deployment, kind: str, addresses: dict[str, str]) -> list[str]:
    """The probe's command as written, with the image's binary and the
    listen addresses (alone or in a URL) mapped to the test's."""
    def mapped(arg: str) -> str:
        if arg in IMAGE_BINARY:
            return str(IMAGE_BINARY[arg])
        scheme, sep, rest = arg.partition("://")
        if sep and rest in addresses:
            return f"{scheme}://{addresses[rest]}"
        return addresses.get(arg, arg)
    return [mapped(arg) for arg in d.probes[kind]]


def test_compose_admin_endpoint_serves_ctl_and_the_demo(deploylint, backend, tmp_path):
    """Over compose's certificate: `mongoguard ctl --ca-file` and the demo's
    own admin client (--admin-ca, as the demo service passes it)."""
    sys.path.insert(0, str(DEPLOY / "demo"))
    import incident  # deploy/demo/incident.py

    d = compose(deploylint, tmp_path)
    c = Container(d, tmp_path / "container", backend.upstream)
    project = parsed(deploylint, "compose", DEPLOY / "compose.yaml", tmp_path)
    demo = project["services"]["demo"]["command"][-1]
    ca_in_demo = re.search(r"--admin-ca (\S+)", demo).group(1)
    assert re.search(r"--admin https://mongoguard:9901 ", demo), demo
    # The demo's mount of the same volume holds the same certificate.
    [demo_volume] = [v["source"] for v in project["services"]["demo"]["volumes"]
                     if v["type"] == "volume" and ca_in_demo.startswith(v["target"] + "/")]
    guard_ca = c.file(d.admin_tls(deploylint, tmp_path)["cert"])
    assert guard_ca.parent.name == demo_volume
    token = c.file(d.env["MONGOGUARD_ADMIN_TOKEN_FILE"])

    p, addresses = on_loopback(c, "ctl")
    with p:
        url = f"https://{addresses[c.admin]}"
        r = subprocess.run([str(PROXY_BIN), "ctl", "--admin", url, "--ca-file", str(guard_ca),
                            "--token-file", str(token), "holds"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and r.stdout == "no pending holds\n", (r.stdout, r.stderr)
        admin = incident.Admin(url, token.read_text().strip(), str(guard_ca))
        assert admin.holds("app.family") == []
        # Without the certificate, the demo's client refuses the endpoint.
        with pytest.raises(urllib.error.URLError):
            incident.Admin(url, token.read_text().strip()).holds("app.family")


def test_sidecar_readiness_probe_fails_when_not_ready(deploylint, tmp_path):
    """The exec probe asks /readyz: with the upstream gone (three client
    connects failed) it fails while the liveness probe still passes."""
    d = kubernetes(deploylint, tmp_path)
    dead = harness.free_port()  # nothing listens there
    c = Container(d, tmp_path / "container", f"mongodb://127.0.0.1:{dead}")
    p, addresses = on_loopback(c, "unready")
    with p:
        def probe(kind: str) -> int:
            return subprocess.run(probe_command(d, kind, addresses), capture_output=True,
                                  timeout=10, env=c.process_env()).returncode

        assert probe("readinessProbe") == 0
        deadline = time.monotonic() + 20
        while get(f"http://{addresses[c.admin]}/readyz")[0] != 503:
            assert time.monotonic() < deadline, p.log_text()
            with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
                s.settimeout(5)
                try:
                    s.recv(1)  # the proxy closes it when the upstream connect fails
                except OSError:
                    pass
        assert probe("readinessProbe") != 0
        assert probe("livenessProbe") == 0


# What puts the admin endpoint back on 0.0.0.0 without TLS, per file: the
# same start as written must then exit 2 with mongoguard's refusal.
MUTATIONS = {
    "Dockerfile": ("Dockerfile", '"--admin-listen", "127.0.0.1:9901"',
                   '"--admin-listen", "0.0.0.0:9901"'),
    "kubernetes": ("kubernetes/sidecar.yaml", '"--admin-listen", "127.0.0.1:9901"',
                   '"--admin-listen", "0.0.0.0:9901"'),
    "compose, example policy": ("compose.yaml", '"./compose-policy.yaml:',
                                '"./examples/policy.yaml:'),
    "compose, no admin.tls": ("compose-policy.yaml", "  tls:\n", "  no_tls:\n"),
}


@pytest.mark.parametrize("what", list(MUTATIONS))
def test_exposed_admin_without_tls_is_refused(what, deploylint, backend, tmp_path):
    relative, old, new = MUTATIONS[what]
    copy = tmp_path / "repo" / "deploy"  # a copy of deploy/, so relative mounts resolve alike
    shutil.copytree(DEPLOY, copy)
    target = copy / relative
    text = target.read_text()
    assert text.count(old) == 1, f"{old!r} not once in {relative}"
    if what == "compose, no admin.tls":  # the whole tls block goes
        text = re.sub(r"\n  tls:\n(    .*\n)+", "\n", text)
    else:
        text = text.replace(old, new)
    target.write_text(text)
    kind = what.split(",")[0]
    loaders = {"Dockerfile": lambda: docker(deploylint, tmp_path, copy / "Dockerfile"),
               "kubernetes": lambda: kubernetes(deploylint, tmp_path,
                                                copy / "kubernetes" / "sidecar.yaml", strict=False),
               "compose": lambda: compose(deploylint, tmp_path, copy / "compose.yaml")}
    d = loaders[kind]()
    c = Container(d, tmp_path / "container", backend.upstream)
    with as_written(c, "mutated") as p:
        code = exited(p)
        log = p.log_text()
    assert code == 2, f"exit {code}; the mutated {relative} was not refused:\n{log}"
    assert f"the admin endpoint 0.0.0.0:9901 {REFUSAL}" in log, log


def test_compose_policy_is_the_example_policy_with_admin_tls(deploylint, tmp_path):
    """deploy/compose-policy.yaml differs from the package's default only in
    admin.listen and admin.tls."""
    example = parsed(deploylint, "yaml", package_policy(), tmp_path)
    ours = parsed(deploylint, "yaml", DEPLOY / "compose-policy.yaml", tmp_path)
    assert set(ours["admin"]["tls"]) == {"cert", "key"}
    assert ours["admin"]["listen"] == "0.0.0.0:9901"
    for policy in (example, ours):
        policy["admin"].pop("listen")
    ours["admin"].pop("tls")
    assert ours == example
