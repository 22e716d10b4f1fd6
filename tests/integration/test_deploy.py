"""The deployment files under deploy/: each one is explained in
docs/deploying.md and checked here; the metrics table of docs/metrics.md, the
README's pictures of the operators' page, and the links between the README
and the pages under docs/.

- Dockerfile, compose file, Kubernetes manifest: scripts/deploylint (a Go
  program built with BuildKit's Dockerfile parser and linter, compose-go with
  the Compose Specification schema, and strict decoding into the k8s.io/api
  types), plus mutated copies that must fail, so the checks are known to bite.
  test_deploy_start.py starts each one's mongoguard as the file says.
- Example policies (and the ConfigMap's policy): `mongoguard validate`.
- Prometheus rules: `promtool check rules` and `promtool test rules`.
- Grafana dashboard: JSON, every PromQL expression parsed by promtool, and
  every metric name it uses present on a running proxy's /metrics.
- systemd unit, logrotate rule, maintainer scripts: test_deb_package.py.
- Demo: test_incident.py. Screenshot: test_admin_page.py writes it.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pymongo
import pytest

import harness
from harness import ROOT, ProxyProcess

DEPLOY = ROOT / "deploy"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
DEPLOYING = DOCS / "deploying.md"  # where every deploy/ file is explained
METRICS = DOCS / "metrics.md"  # the table of every metric and its labels

# Every file under deploy/ and what checks it. A new file must be added here
# (and to docs/deploying.md), or test_every_deploy_file_is_explained_and_checked fails.
CHECKED_BY = {
    "Dockerfile": "test_dockerfile_lint, test_deploy_start.py (starts as written)",
    "Dockerfile.dockerignore": "test_dockerignore_keeps_sources",
    "compose.yaml": "test_compose_lint, test_deploy_start.py (starts as written)",
    "compose-policy.yaml": "test_deploy_start.py (compose starts with it; else the example's)",
    "kubernetes/sidecar.yaml": "test_kubernetes_lint, test_deploy_start.py (starts, probes run)",
    "systemd/mongoguard.service": "test_deb_package.py (systemd-analyze verify)",
    "logrotate/mongoguard": "test_deb_package.py (logrotate run)",
    "debian/conffiles": "test_deb_package.py (conffiles kept on remove, gone on purge)",
    "debian/postinst": "test_deb_package.py (admin token made)",
    "debian/prerm": "test_deb_package.py (dpkg -r)",
    "debian/postrm": "test_deb_package.py (purge removes token and logs)",
    "examples/policy.yaml": "test_example_policies_validate",
    "examples/strict-production.yaml": "test_example_policies_validate",
    "examples/migration-window.yaml": "test_example_policies_validate, test_migration_window_grant_flow",
    "prometheus/alerts.yaml": "test_prometheus_rules",
    "prometheus/alerts_test.yaml": "test_prometheus_rules",
    "grafana/mongoguard.json": "test_grafana_dashboard_uses_exported_metrics",
    "demo/incident.py": "test_incident.py",
    "demo/README.md": "test_demo_readme_flags_exist (and test_incident.py runs the demo)",
    "screenshots/admin-page.png": "test_screenshot_is_a_png (test_admin_page.py can rewrite it)",
    "screenshots/admin-page-phone.png": "test_screenshot_is_a_png (test_admin_page.py can rewrite it)",
}


def deploy_files() -> list[str]:
    out = []
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            out.append(path.relative_to(DEPLOY).as_posix())
    return out


def test_every_deploy_file_is_explained_and_checked():
    page = DEPLOYING.read_text()
    files = deploy_files()
    assert files, "deploy/ is empty"
    missing = [f for f in files if f"deploy/{f}" not in page]
    assert not missing, f"deploy/ files docs/deploying.md does not mention: {missing}"
    unchecked = [f for f in files if f not in CHECKED_BY]
    assert not unchecked, f"deploy/ files no test checks (add them to CHECKED_BY): {unchecked}"
    stale = [f for f in CHECKED_BY if f not in files]
    assert not stale, f"CHECKED_BY names files that are gone: {stale}"


# ---- deploylint (Dockerfile, compose, Kubernetes; the fixture is in conftest.py) ----


def lint(tool: pathlib.Path, kind: str, path: pathlib.Path, *extra: str):
    return subprocess.run([str(tool), kind, str(path), *extra], capture_output=True, text=True,
                          timeout=60)


def mutated(tmp_path: pathlib.Path, source: pathlib.Path, old: str, new: str,
            name: str | None = None) -> pathlib.Path:
    text = source.read_text()
    assert old in text, f"{old!r} not in {source}"
    out = tmp_path / (name or source.name)
    out.write_text(text.replace(old, new, 1))
    return out


DOCKERFILE_REASONS = {
    "no USER": "final stage has no USER",
    "root": "final stage runs as root",
    "one stage": "want a multi-stage build",
    "not the CI script": "must run scripts/deps.sh and scripts/package.sh",
    "build tools at run time": "final stage installs build tools",
    "not bookworm": "want debian:bookworm",
    "lint rule": "FromAsCasing",
}
COMPOSE_REASONS = {
    "unknown key": "services.mongo.bogus",
    "wrong server": "mongo:7",
    "missing mount": "does not exist",
    "no demo": "want a service demo",
}
KUBERNETES_REASONS = {
    "unknown field": 'unknown field "periodSecond"',
    "wrong type": "cannot unmarshal string",
    "probe path": "want /readyz",
    "probe address": "does not name --admin-listen 127.0.0.1:9901",
    "subPath mount": "subPath",
    "missing secret": "neither in this file nor created",
    "secret key": "does not give it the key admin.token",
    "no requests": "requests",
}


def test_dockerfile_lint(deploylint, tmp_path):
    ok = lint(deploylint, "dockerfile", DEPLOY / "Dockerfile")
    assert ok.returncode == 0, ok.stderr
    src = DEPLOY / "Dockerfile"
    bad = {
        "no USER": mutated(tmp_path, src, "USER 10001:10001", "", "a"),
        "root": mutated(tmp_path, src, "USER 10001:10001", "USER root", "b"),
        "one stage": tmp_path / "c",
        "not the CI script": mutated(tmp_path, src, "scripts/package.sh -D", "cmake -D", "d"),
        "build tools at run time": mutated(
            tmp_path, src, "/tmp/mongoguard.deb \\\n", "/tmp/mongoguard.deb cmake \\\n", "e"),
        "not bookworm": mutated(tmp_path, src, "FROM debian:bookworm-slim\n", "FROM ubuntu:24.04\n",
                                "f"),
        "lint rule": mutated(tmp_path, src, "AS build", "as build", "g"),
    }
    text = src.read_text()
    (tmp_path / "c").write_text(text[text.index("FROM debian:bookworm-slim\nCOPY"):]
                                .replace("COPY --from=build /mongoguard.deb", "COPY dist/x.deb"))
    for what, path in bad.items():
        r = lint(deploylint, "dockerfile", path)
        assert r.returncode == 1, f"{what}: lint passed a bad Dockerfile:\n{path.read_text()}"
        assert DOCKERFILE_REASONS[what] in r.stderr, (what, r.stderr)


def test_dockerignore_keeps_sources():
    ignored = [line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    # The build stage runs these; ignoring them would break the image build.
    for needed in ["scripts/", "CMakeLists.txt", "bson/", "policy/", "config/", "proxy/", "deploy/",
                   "README.md", "docs/"]:
        assert not any(needed.startswith(p.rstrip("*")) for p in ignored), (needed, ignored)
    assert "build/" in ignored and ".venv/" in ignored


def test_compose_lint(deploylint, tmp_path):
    ok = lint(deploylint, "compose", DEPLOY / "compose.yaml")
    assert ok.returncode == 0, ok.stderr
    # Mutated copies in a copy of deploy/, so relative paths resolve the same.
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy)
    src = copy / "compose.yaml"
    bad = {
        "unknown key": ("    image: mongo:7\n", "    image: mongo:7\n    bogus: 1\n"),
        "wrong server": ("image: mongo:7", "image: mongo:6"),
        "missing mount": ("./demo:/demo:ro", "./nowhere:/demo:ro"),
        "no demo": ("  demo:\n", "  other:\n"),
    }
    for what, (old, new) in bad.items():
        path = mutated(copy, src, old, new, "mutated.yaml")
        try:
            r = lint(deploylint, "compose", path)
        finally:
            path.unlink()
        assert r.returncode == 1, f"{what}: lint passed a bad compose file"
        assert COMPOSE_REASONS[what] in r.stderr, (what, r.stderr)


def test_kubernetes_lint(deploylint, tmp_path):
    policy = tmp_path / "configmap-policy.yaml"
    ok = lint(deploylint, "kubernetes", DEPLOY / "kubernetes" / "sidecar.yaml", "-policy-out",
              str(policy))
    assert ok.returncode == 0, ok.stderr
    # The policy the ConfigMap carries is a valid policy.
    v = subprocess.run([str(harness.PROXY_BIN), "validate", str(policy)], capture_output=True,
                       text=True, timeout=30)
    assert v.returncode == 0, v.stdout + v.stderr
    src = DEPLOY / "kubernetes" / "sidecar.yaml"
    bad = {
        "unknown field": ("periodSeconds: 5", "periodSecond: 5"),
        "wrong type": ("replicas: 1", "replicas: one"),
        "probe path": ('"http://127.0.0.1:9901", "ready"]', '"http://127.0.0.1:9901", "alive"]'),
        "probe address": ('"http://127.0.0.1:9901", "ready"]', '"http://127.0.0.1:9902", "ready"]'),
        "subPath mount": ("mountPath: /etc/mongoguard, readOnly: true",
                          "mountPath: /etc/mongoguard, subPath: policy.yaml, readOnly: true"),
        "missing secret": ("secretName: mongoguard-admin-token", "secretName: other-token"),
        "secret key": ("--from-literal=admin.token=", "--from-literal=token="),
        "no requests": ("requests: { cpu: 100m, memory: 32Mi }", "requests: {}"),
    }
    for what, (old, new) in bad.items():
        r = lint(deploylint, "kubernetes", mutated(tmp_path, src, old, new, what.replace(" ", "_")))
        assert r.returncode == 1, f"{what}: lint passed a bad manifest"
        assert KUBERNETES_REASONS[what] in r.stderr, (what, r.stderr)


# ---- policies ----

def test_example_policies_validate():
    examples = sorted((DEPLOY / "examples").glob("*.yaml"))
    assert len(examples) >= 3
    for path in examples:
        r = subprocess.run([str(harness.PROXY_BIN), "validate", str(path)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, f"{path.name}:\n{r.stdout}{r.stderr}"
    # ... and validate is not a rubber stamp.
    broken = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    broken.write((DEPLOY / "examples" / "strict-production.yaml").read_text()
                 .replace("action: hold", "action: park", 1))
    broken.close()
    try:
        r = subprocess.run([str(harness.PROXY_BIN), "validate", broken.name], capture_output=True,
                           text=True, timeout=30)
    finally:
        os.unlink(broken.name)
    assert r.returncode == 1 and "park" in r.stdout + r.stderr


def test_example_policy_protects_every_database_and_says_so(backend, tmp_path, monkeypatch):
    path = DEPLOY / "examples" / "policy.yaml"
    r = subprocess.run([str(harness.PROXY_BIN), "validate", str(path)], capture_output=True,
                       text=True, timeout=30)
    assert "warning" not in r.stdout, r.stdout  # no rule of the default is dead
    monkeypatch.setenv("MONGOGUARD_JOURNAL_PATH", str(tmp_path / "journal.db"))
    with example_proxy(backend, monkeypatch, tmp_path) as proxy:
        proxy.wait_for_log(
            "policy: protects *.* (5 rules), admin.* (1 rule), config.* (1 rule), local.* "
            "(1 rule); exempts app.* (1 rule) for some clients; unprotected: nothing, a rule "
            "covers every namespace")


# ---- Prometheus and Grafana ----

def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: scripts/deps.sh test installs the prometheus package"
    return path


def test_prometheus_rules():
    rules = DEPLOY / "prometheus"
    r = subprocess.run([promtool(), "check", "rules", str(rules / "alerts.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([promtool(), "test", "rules", str(rules / "alerts_test.yaml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    names = set(re.findall(r"- alert: (\w+)", (rules / "alerts.yaml").read_text()))
    assert {"MongoguardBreakerTripped", "MongoguardHoldWaiting", "MongoguardFleetDegraded"} <= names


def exported_metric_names(proxy: ProxyProcess) -> set[str]:
    request = urllib.request.Request(f"http://127.0.0.1:{proxy.admin_port}/metrics",
                                     headers={"Authorization": f"Bearer {proxy.token}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        text = r.read().decode()
    names = set()
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            names.add(m.group(1))
            if m.group(2) == "histogram":
                names |= {m.group(1) + s for s in ("_bucket", "_sum", "_count")}
    return names


def example_proxy(backend, monkeypatch, tmp_path) -> ProxyProcess:
    """build/mongoguard with the cautious default policy, its audit log in tmp_path."""
    monkeypatch.setenv("MONGOGUARD_AUDIT_PATH", str(tmp_path / "audit.jsonl"))
    return ProxyProcess(backend.upstream, "--config", str(DEPLOY / "examples" / "policy.yaml"))


def test_grafana_dashboard_uses_exported_metrics(backend, tmp_path, monkeypatch):
    dashboard = json.loads((DEPLOY / "grafana" / "mongoguard.json").read_text())
    exprs = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            exprs.append((panel["title"], target["expr"]))
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for subject in ["connections", "verdicts by rule", "holds pending", "deleted per namespace",
                    "latency"]:
        assert subject in titles, f"no panel about {subject}"
    # promtool parses every expression (Grafana's variables replaced by values).
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr{i}",
         "expr": e.replace("$__rate_interval", "1m").replace("$instance", ".*")}
        for i, (_, e) in enumerate(exprs)]}]}
    rules_file = tmp_path / "dashboard-rules.yaml"
    rules_file.write_text(json.dumps(rules))  # JSON is YAML
    r = subprocess.run([promtool(), "check", "rules", str(rules_file)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    used = set()
    for _, e in exprs:
        used |= set(re.findall(r"\b(mongoguard_[a-z0-9_]+)\b", e))
    used |= set(re.findall(r"\b(mongoguard_[a-z0-9_]+)\b",
                           json.dumps(dashboard["templating"])))
    with example_proxy(backend, monkeypatch, tmp_path) as proxy:
        exported = exported_metric_names(proxy)
    assert "mongoguard_connections_open" in exported
    unknown = sorted(used - exported)
    assert not unknown, f"dashboard uses metrics the proxy does not export: {unknown}"


def test_metrics_are_documented_with_their_labels(backend, tmp_path, monkeypatch):
    """docs/metrics.md's table names every exported metric and its labels."""
    page = METRICS.read_text()
    with example_proxy(backend, monkeypatch, tmp_path) as proxy:
        request = urllib.request.Request(f"http://127.0.0.1:{proxy.admin_port}/metrics",
                                         headers={"Authorization": f"Bearer {proxy.token}"})
        with urllib.request.urlopen(request, timeout=5) as r:
            text = r.read().decode()
    families = re.findall(r"# TYPE (\S+) \S+", text)
    assert families
    missing = [f for f in families if f"`{f}`" not in page]
    assert not missing, f"metrics docs/metrics.md does not document: {missing}"
    labels: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = re.match(r"([a-z_]+?)(?:_bucket)?\{(.*)\} ", line)
        if m:
            labels.setdefault(m.group(1), set()).update(
                k for k in re.findall(r'(\w+)="', m.group(2)) if k != "le")
    for family, keys in labels.items():
        row = next((line for line in page.splitlines() if f"`{family}`" in line), "")
        for key in keys:
            assert f"`{key}`" in row, f"docs/metrics.md's row for {family} does not name label {key}"


def test_namespace_label_is_bounded(backend, tmp_path):
    """Namespaces no rule matched count as "other"; a rule's namespaces are named."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n"
                      "  - name: watch-deploytest\n"
                      "    match: { namespace: \"deploytest_ns.watched\", operations: [delete] }\n"
                      "    action: log\n")
    with ProxyProcess(backend.upstream, "--config", str(policy)) as proxy:
        client = pymongo.MongoClient(proxy.uri, serverSelectionTimeoutMS=15000)
        try:
            db = client["deploytest_ns"]
            db.watched.insert_many([{"i": i} for i in range(3)])
            db.unwatched.insert_many([{"i": i} for i in range(2)])
            db.watched.delete_many({"i": {"$gte": 0}})
            db.unwatched.delete_many({"i": {"$gte": 0}})
            metrics = proxy.metrics()
        finally:
            client.drop_database("deploytest_ns")
            client.close()
    key = 'mongoguard_namespace_documents_affected_total{{namespace="{}",operation="delete"}}'
    shown = {k: v for k, v in metrics.items() if "documents" in k or "verdict" in k}
    assert metrics.get(key.format("deploytest_ns.watched")) == 3, shown
    assert metrics.get(key.format("other")) == 2, shown
    assert not any("deploytest_ns.unwatched" in k for k in metrics)
    assert metrics.get("mongoguard_inspected_reply_seconds_count", 0) >= 2


def kubelet_write(directory: pathlib.Path, files: dict[str, str], generation: int) -> None:
    """Updates a ConfigMap volume the way the kubelet's atomic writer does:
    files in a new timestamped folder, `..data` swapped to it by rename, the
    visible names symlinks through `..data`, the old folder removed."""
    new = directory / f"..2026_01_01_00_00_0{generation}.{os.getpid()}"
    new.mkdir()
    for name, text in files.items():
        (new / name).write_text(text)
    tmp = directory / "..data_tmp"
    tmp.symlink_to(new.name)
    old = os.readlink(directory / "..data") if (directory / "..data").is_symlink() else None
    os.rename(tmp, directory / "..data")
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    if old:
        shutil.rmtree(directory / old)


def test_configmap_symlink_swap_reloads_policy(backend, tmp_path):
    volume = tmp_path / "configmap"
    volume.mkdir()
    lenient = "rules:\n  - { name: log-deletes, match: { namespace: \"*.*\", operations: [delete] }, action: log }\n"
    strict = ("rules:\n  - { name: swapped-in, match: { namespace: \"*.*\", operations: [delete], "
              "filter: unfiltered }, action: block }\n")
    kubelet_write(volume, {"policy.yaml": lenient}, 1)
    with ProxyProcess(backend.upstream, "--config", str(volume / "policy.yaml")) as proxy:
        client = pymongo.MongoClient(proxy.uri, serverSelectionTimeoutMS=15000)
        db = client[f"cmswap_{os.getpid()}"]
        try:
            db.c.insert_many([{"i": i} for i in range(3)])
            assert db.c.delete_many({}).deleted_count == 3  # the first policy lets it through
            before = proxy.metrics()["mongoguard_policy_reloads_total"]
            kubelet_write(volume, {"policy.yaml": strict}, 2)
            deadline = time.monotonic() + 20
            while proxy.metrics()["mongoguard_policy_reloads_total"] == before:
                assert time.monotonic() < deadline, "no reload after the symlink swap:\n" + \
                    proxy.log_text()[-3000:]
                time.sleep(0.2)
            db.c.insert_many([{"i": i} for i in range(3)])
            with pytest.raises(pymongo.errors.OperationFailure) as caught:
                db.c.delete_many({})
            assert "swapped-in" in str(caught.value)
            assert proxy.metrics()["mongoguard_policy_reload_failures_total"] == 0
        finally:
            client.drop_database(db.name)
            client.close()


def test_hold_age_and_wait_metrics(backend):
    """What MongoguardHoldWaiting and the dashboard's hold panels read."""
    from admin_helpers import AdminProxy, Background

    db = f"holdage_{os.getpid()}"
    seeder = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=15000)
    seeder[db].held.insert_many([{"_id": i} for i in range(3)])
    p = AdminProxy(backend.upstream, f"""
        rules:
          - name: park
            match: {{namespace: "{db}.held", operations: [delete]}}
            action: hold
        """)
    try:
        def gauge(name: str) -> float:
            text = p.api("GET", "/metrics")[1]
            m = re.search(rf"^{name} (\S+)$", text, re.M)
            assert m, f"{name} not on /metrics"
            return float(m.group(1))

        assert gauge("mongoguard_hold_oldest_age_seconds") == 0
        c = p.client()
        op = Background(lambda: c[db].held.delete_one({"_id": 1}))
        [hold] = p.wait_for_holds()
        time.sleep(1.2)
        first = gauge("mongoguard_hold_oldest_age_seconds")
        assert first >= 1.0, first
        time.sleep(0.5)
        assert gauge("mongoguard_hold_oldest_age_seconds") > first
        p.ok("POST", f"/api/holds/{hold['id']}/reject", {"by": "deploy-test"})
        with pytest.raises(pymongo.errors.OperationFailure):
            op.result()
        assert gauge("mongoguard_hold_oldest_age_seconds") == 0
        assert gauge("mongoguard_hold_wait_seconds_count") == 1
        assert gauge("mongoguard_hold_wait_seconds_sum") >= 1.5
        assert gauge('mongoguard_hold_wait_seconds_bucket{le="1"}') == 0
        assert gauge('mongoguard_hold_wait_seconds_bucket{le="1800"}') == 1
        assert seeder[db].held.count_documents({}) == 3  # the rejected delete never arrived
    finally:
        p.stop()
        seeder.drop_database(db)
        seeder.close()


def test_demo_readme_flags_exist():
    """Every flag deploy/demo/README.md tells people to type exists."""
    text = (DEPLOY / "demo" / "README.md").read_text()
    known = set(re.findall(r"add_argument\(\s*\"(--[a-z-]+)\"",
                           (DEPLOY / "demo" / "incident.py").read_text()))
    assert {"--proxy", "--direct", "--auto-reject"} <= known, known
    for args in (["--help"], ["ctl", "--help"]):
        r = subprocess.run([str(harness.PROXY_BIN), *args], capture_output=True, text=True,
                           timeout=30)
        known |= set(re.findall(r"(--[a-z][a-z-]*)", r.stdout + r.stderr))
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text))
    assert used, "no flags found in deploy/demo/README.md"
    assert not used - known, f"deploy/demo/README.md uses unknown flags: {sorted(used - known)}"


@pytest.mark.parametrize("name, widths", [("admin-page.png", (400, 4000)),
                                          ("admin-page-phone.png", (390, 390))])
def test_screenshot_is_a_png(name, widths):
    """The README's pictures of the operators' page (desktop, and a phone's
    390 px) are shown in README.md and are real PNGs of page-sized images."""
    assert f"](deploy/screenshots/{name})" in README.read_text(), f"README.md does not show {name}"
    data = (DEPLOY / "screenshots" / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert widths[0] <= width <= widths[1] and 200 <= height <= 8000, (width, height)


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"#{1,6} (.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def markdown_links(text: str) -> list[str]:
    """Targets of [text](target) and ![alt](target) outside code fences."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            out += re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`]*`", "", line))
    return out


def test_docs_links_resolve():
    """Every relative link of README.md and the pages under docs/ names a
    file that exists and, with #anchor, a heading that file has (the README's
    reference material moved into docs/; links must follow it)."""
    pages = [README, *sorted(DOCS.glob("*.md")), DEPLOY / "demo" / "README.md"]
    broken = []
    for page in pages:
        for target in markdown_links(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest.read_text()):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)
    # The reference pages are all linked from the README.
    readme = README.read_text()
    unlinked = [p.name for p in DOCS.glob("*.md") if f"](docs/{p.name}" not in readme]
    assert not unlinked, f"docs/ pages README.md does not link: {unlinked}"


def test_migration_window_grant_flow(backend, tmp_path, monkeypatch):
    """The workflow deploy/examples/migration-window.yaml documents, with its
    budget shrunk to 3 documents: the budget is spent, the next write is held,
    `ctl grant NAME --minutes 30` releases it and lets the migration go on
    without further holds, and unfiltered writes stay blocked."""
    from admin_helpers import Background, http

    db = f"migwin_{os.getpid()}"
    text = (DEPLOY / "examples" / "migration-window.yaml").read_text()
    assert "documents: 5000" in text and '"app.*"' in text
    policy = tmp_path / "migration-window.yaml"
    policy.write_text(text.replace("documents: 5000", "documents: 3")
                      .replace('"app.*"', f'"{db}.*"'))
    monkeypatch.setenv("MONGOGUARD_AUDIT_PATH", str(tmp_path / "audit.jsonl"))
    direct = pymongo.MongoClient(backend.uri, serverSelectionTimeoutMS=15000)
    direct[db].families.insert_many([{"_id": i} for i in range(10)])
    with ProxyProcess(backend.upstream, "--config", str(policy)) as proxy:
        admin = f"http://127.0.0.1:{proxy.admin_port}"

        def ctl(*args: str) -> str:
            r = subprocess.run([str(harness.PROXY_BIN), "ctl", "--admin", admin, "--token-file",
                                str(proxy.token_file), *args], capture_output=True, text=True,
                               timeout=30)
            assert r.returncode == 0, (args, r.stdout, r.stderr)
            return r.stdout

        client = pymongo.MongoClient(proxy.uri, serverSelectionTimeoutMS=15000, maxPoolSize=1)
        try:
            coll = client[db].families
            for i in range(3):
                assert coll.delete_one({"_id": i}).deleted_count == 1
            op = Background(lambda: coll.delete_one({"_id": 3}))
            deadline = time.monotonic() + 15
            while not (holds := http(admin, "GET", "/api/holds", token=proxy.token)[1]["holds"]):
                assert time.monotonic() < deadline, "the fourth delete was not held"
                time.sleep(0.05)
            name = f"migration-budget:{db}.families@1m"  # the minute window tripped
            assert name in ctl("breakers")
            granted = ctl("grant", name, "--minutes", "30", "--as", "alice")
            assert "released 1 held operation(s)" in granted, granted
            assert op.result().deleted_count == 1
            for i in range(4, 8):  # past the budget again: the grant lets them through
                assert coll.delete_one({"_id": i}).deleted_count == 1
            assert http(admin, "GET", "/api/holds", token=proxy.token)[1]["holds"] == []
            with pytest.raises(pymongo.errors.OperationFailure) as caught:
                coll.delete_many({})
            assert "no-unfiltered-writes" in str(caught.value)
            assert direct[db].families.count_documents({}) == 2
        finally:
            client.close()
            direct.drop_database(db)
            direct.close()
