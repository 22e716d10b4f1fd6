"""The policy tools on the command line: `mongoguard validate FILE`,
`mongoguard explain`, and `mongoguard --config FILE` refusing a file it
cannot use. No backend needed: these never open a connection.

Error positions are not hard-coded: each case marks the token the error
must point at, and the expected FILE:LINE:COL is computed from where that
token sits in the file."""

from __future__ import annotations

import re
import subprocess
import textwrap

import pytest

from harness import PROXY_BIN, free_port

TIMEOUT = 20


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PROXY_BIN), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def position(text: str, token: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based line and column of the `occurrence`-th appearance of `token`."""
    start = -1
    for _ in range(occurrence):
        start = text.index(token, start + 1)
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, column


def write(tmp_path, text: str, name: str = "policy.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path, path.read_text()


VALID = """
mode: enforce
listen: 127.0.0.1:27017
upstream: mongodb://127.0.0.1:27018
threads: 2
log_level: info
connect_timeout: 5s
admin:
  listen: 127.0.0.1:9901
audit:
  path: /tmp/mongoguard-audit.jsonl
  redact: true
rules:
  - name: no-mass-delete
    match:
      namespace: ["app.*", "billing.invoices"]
      operations: [delete, update]
      filter: unfiltered
      users: [alice]
      apps: [webapp]
      clients: [127.0.0.1/32, 10.0.0.0/8, "fd00::/8"]
    action: block
    message: ask the on-call DBA
  - name: migrator
    match: {apps: migrator}
    action: allow
  - name: watch-drops
    match: {namespace: "*.*", operations: [drop, dropDatabase, dropIndexes]}
    action: log
    mode: dry-run
  - name: park-ttl
    match: {operations: [ttlChange]}
    action: hold
"""


def test_validate_accepts_a_valid_file(tmp_path):
    path, _ = write(tmp_path, VALID)
    result = run("validate", str(path))
    assert result.returncode == 0, result
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"{path}: ok (4 rules, mode enforce)"
    # Valid, but two things in it are keyed on what a client says about itself.
    assert lines[:-1] == [
        f"{path}:18:15: warning: user 'alice' names no database: it matches alice@admin only "
        "(users are matched as name@authdb)",
        f"{path}:24:19: warning: rule 'migrator' exempts by appName alone: any client can claim "
        "an appName; add users or clients",
    ], lines


def test_validate_accepts_an_empty_file(tmp_path):
    path, _ = write(tmp_path, "")
    result = run("validate", str(path))
    assert result.returncode == 0, result
    assert "ok (0 rules" in result.stdout


# (name, file text, token the error points at, words the message must contain)
ERROR_CASES = [
    ("unknown_top_level_key", """
        mode: enforce
        colour: blue
        rules: []
        """, "colour", "unknown key 'colour'"),
    ("unknown_rule_key", """
        rules:
          - name: r
            match: {}
            action: block
            severity: high
        """, "severity", "unknown key 'severity'"),
    ("unknown_match_key", """
        rules:
          - name: r
            match: {namespace: "app.*", databases: [app]}
            action: block
        """, "databases", "unknown key 'databases'"),
    ("bad_glob", """
        rules:
          - name: r
            match: {namespace: "app[0-9].*"}
            action: block
        """, '"app[0-9].*"', "bad namespace glob"),
    ("glob_without_collection", """
        rules:
          - name: r
            match:
              namespace: [app.users, nodot]
            action: block
        """, "nodot", "bad namespace glob"),
    ("unknown_operation", """
        rules:
          - name: r
            match: {operations: [delete, obliterate]}
            action: block
        """, "obliterate", "unknown operation 'obliterate'"),
    ("bad_duration", """
        connect_timeout: 5 parsecs
        rules: []
        """, "5 parsecs", "bad duration '5 parsecs'"),
    ("bad_cidr_prefix", """
        rules:
          - name: r
            match: {clients: [10.0.0.0/33]}
            action: block
        """, "10.0.0.0/33", "bad CIDR"),
    ("bad_cidr_address", """
        rules:
          - name: r
            match:
              clients:
                - 127.0.0.1/32
                - office-network
            action: block
        """, "office-network", "bad CIDR"),
    ("duplicate_rule_name", """
        rules:
          - name: same
            match: {}
            action: log
          - name: same
            match: {}
            action: block
        """, ("same", 2), "duplicate rule name 'same'"),
    ("bad_action", """
        rules:
          - name: r
            match: {}
            action: obliterate
        """, "obliterate", "action must be"),
    ("bad_mode", """
        mode: dryrun
        """, "dryrun", "mode must be enforce or dry-run"),
    ("yaml_syntax", """
        rules:
          - name: r
            match: {namespace: "app.*"
            action: block
        """, None, ""),
]


@pytest.mark.parametrize("name,text,token,words", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_validate_reports_each_error_with_file_line_column(tmp_path, name, text, token, words):
    path, body = write(tmp_path, text)
    result = run("validate", str(path))
    assert result.returncode == 1, result
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    match = re.fullmatch(rf"{re.escape(str(path))}:(\d+):(\d+): (.+)", lines[0])
    assert match, lines[0]
    if token is not None:
        token, occurrence = token if isinstance(token, tuple) else (token, 1)
        assert (int(match[1]), int(match[2])) == position(body, token, occurrence), lines[0]
    assert words in match[3], lines[0]


def test_validate_reports_every_error_in_file_order(tmp_path):
    path, body = write(tmp_path, """
        mode: enforce
        connect_timeout: 5 parsecs
        colour: blue
        rules:
          - name: one
            match: {namespace: "app[0-9].*", operations: [delete, obliterate]}
            action: block
          - name: two
            match:
              clients: [10.0.0.0/33]
            action: block
          - name: one
            match: {}
            action: log
        """)
    result = run("validate", str(path))
    assert result.returncode == 1
    expected = [
        (position(body, "5 parsecs"), "bad duration"),
        (position(body, "colour"), "unknown key 'colour'"),
        (position(body, '"app[0-9].*"'), "bad namespace glob"),
        (position(body, "obliterate"), "unknown operation"),
        (position(body, "10.0.0.0/33"), "bad CIDR"),
        (position(body, "one", 2), "duplicate rule name 'one'"),
    ]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(expected), result.stdout
    for line, ((row, col), words) in zip(lines, expected):
        assert line.startswith(f"{path}:{row}:{col}: "), (line, row, col)
        assert words in line, line


def test_validate_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    result = run("validate", str(path))
    assert result.returncode == 1
    assert result.stdout.strip() == f"{path}: cannot read file: No such file or directory"


def test_validate_directory_is_not_a_policy(tmp_path):
    """A path that cannot be read as a file (here a directory: the tests run as
    root, so permission bits do not make a file unreadable) is an error, not
    an empty policy."""
    result = run("validate", str(tmp_path))
    assert result.returncode == 1, (f"validate of a directory exited {result.returncode}: "
                                    f"{result.stdout.strip()}")
    assert result.stdout.startswith(f"{tmp_path}: cannot read file"), result.stdout


def test_validate_usage(tmp_path):
    result = run("validate")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "mongoguard validate: no FILE to check"


def test_validate_warns_of_rules_that_never_act(tmp_path):
    path, body = write(tmp_path, """
        rules:
          - name: tmp-ok
            match: {namespace: "app.tmp*", users: [ops@admin, ci@admin]}
            action: allow
          - name: no-tmp-deletes
            match: {namespace: "app.tmp_cache", operations: [delete], users: [ci@admin]}
            action: block
          - name: everyone
            match: {namespace: "app.*", operations: [delete]}
            action: hold
          - name: billing-ok
            match: {namespace: "billing.*", users: [ops@admin]}
            action: allow
        """)
    result = run("validate", str(path))
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines == [
        "{}:{}:{}: warning: rule 'no-tmp-deletes' never acts: allow rule 'tmp-ok' (line 2) "
        "matches everything it matches, and a matching allow rule wins".format(
            path, *position(body, "name: no-tmp-deletes")),
        "{}:{}:{}: warning: allow rule 'billing-ok' exempts nothing: no block, hold, log or "
        "budget rule covers its namespaces".format(path, *position(body, "name: billing-ok")),
        f"{path}: ok (4 rules, mode enforce)"], lines


# --- mongoguard --config with a file it cannot use ---------------------------------


def _start_with_config(path, wait: float = 5.0) -> subprocess.CompletedProcess:
    """Starts the proxy with --config PATH; one that is still running after
    `wait` seconds (it accepted the file) is stopped and reported with
    returncode None."""
    args = [str(PROXY_BIN), "--config", str(path), "--listen", f"127.0.0.1:{free_port()}",
            "--upstream", f"mongodb://127.0.0.1:{free_port()}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=wait)
        return subprocess.CompletedProcess(args, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
        return subprocess.CompletedProcess(args, None, out, err)


def test_proxy_refuses_a_broken_config_with_one_line_per_problem(tmp_path):
    path, body = write(tmp_path, """
        connect_timeout: 5 parsecs
        rules:
          - name: r
            match: {operations: [obliterate], clients: [not-a-network]}
            action: block
        """)
    result = _start_with_config(path)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "mongoguard: {}:{}:{}: bad duration '5 parsecs' for connect_timeout "
        "(use e.g. 500ms, 10s, 1m)".format(path, *position(body, "5 parsecs")),
        lines[1], lines[2]], lines
    assert lines[1].startswith("mongoguard: {}:{}:{}: unknown operation 'obliterate'".format(
        path, *position(body, "obliterate")))
    assert lines[2].startswith("mongoguard: {}:{}:{}: bad CIDR".format(
        path, *position(body, "not-a-network")))
    assert "listening" not in result.stderr


def test_proxy_refuses_a_missing_config(tmp_path):
    path = tmp_path / "missing.yaml"
    result = _start_with_config(path)
    assert result.returncode == 2, result
    assert result.stderr.strip() == f"mongoguard: {path}: cannot read file: No such file or directory"


def test_proxy_refuses_a_directory_as_config(tmp_path):
    """Starting with no rules because --config named a directory would fail open."""
    result = _start_with_config(tmp_path)
    assert result.returncode == 2, (f"--config DIRECTORY: exit status {result.returncode} "
                                    f"(None = still serving after 5 s); stderr:\n"
                                    f"{result.stderr[-2000:]}")
    assert "cannot read file" in result.stderr


# --- explain -----------------------------------------------------------------------

EXPLAIN_POLICY = """
mode: enforce
rules:
  - name: no-mass-delete
    match: {namespace: "app.*", operations: [delete], filter: unfiltered}
    action: block
    message: ask the on-call DBA
  - name: no-drops-from-office
    match: {namespace: "app.*", operations: [drop], clients: [10.0.0.0/8]}
    action: block
  - name: alice-logged
    match: {namespace: "app.*", operations: [update], users: [alice]}
    action: log
  - name: migrator
    match: {apps: [migrator]}
    action: allow
  - name: trial-ttl
    match: {operations: [ttlChange]}
    action: block
    mode: dry-run
  - name: watch-index-drops
    match: {operations: [dropIndexes]}
    action: log
    mode: dry-run
"""


@pytest.fixture
def explain(tmp_path):
    path, _ = write(tmp_path, EXPLAIN_POLICY)

    def call(db: str, command: str, *extra: str) -> subprocess.CompletedProcess:
        return run("explain", "--config", str(path), "--db", db, "--command", command, *extra)

    return call


def verdict_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stdout.splitlines() if line.startswith("verdict: ")]
    assert len(lines) == 1, result.stdout
    return lines[0]


def test_explain_blocked(explain):
    result = explain("app", '{"delete": "users", "deletes": [{"q": {"$expr": true}, "limit": 0}]}')
    assert result.returncode == 0, result
    out = result.stdout
    assert "command: delete on database app" in out
    assert re.search(r"^  delete app\.users .*multi=1 filter=unfiltered", out, re.M), out
    assert "matches rule 'no-mass-delete' (line 3): block" in out
    assert verdict_line(result) == "verdict: block by rule 'no-mass-delete'"
    assert ('client sees: {ok: 0, code: 13, codeName: "Unauthorized", errmsg: "mongoguard: delete '
            "on app.users blocked by rule 'no-mass-delete': ask the on-call DBA\"}") in out


def test_explain_allowed_when_no_rule_matches(explain):
    result = explain("other", '{"delete": "users", "deletes": [{"q": {}, "limit": 0}]}')
    assert result.returncode == 0, result
    assert "other.users" in result.stdout
    assert verdict_line(result) == "verdict: allow (no rule matched)"
    assert "client sees: the server's own reply (the operation is forwarded)" in result.stdout
    # A selective filter does not match filter: unfiltered.
    result = explain("app", '{"delete": "users", "deletes": [{"q": {"_id": 7}, "limit": 1}]}')
    assert "filter=filtered" in result.stdout
    assert verdict_line(result) == "verdict: allow (no rule matched)"


def test_explain_allow_exemption(explain):
    result = explain("app", '{"delete": "users", "deletes": [{"q": {}, "limit": 0}]}',
                     "--app", "migrator")
    assert "matches rule 'no-mass-delete'" in result.stdout
    assert "matches rule 'migrator' (line 13): allow" in result.stdout
    assert verdict_line(result) == "verdict: allow (exempted by an allow rule 'migrator')"


def test_explain_identity_conditions(explain):
    drop = '{"drop": "users"}'
    assert verdict_line(explain("app", drop, "--client", "10.1.2.3")) == \
        "verdict: block by rule 'no-drops-from-office'"
    assert verdict_line(explain("app", drop, "--client", "127.0.0.1")) == \
        "verdict: allow (no rule matched)"
    update = '{"update": "users", "updates": [{"q": {"_id": 1}, "u": {"$set": {"a": 1}}}]}'
    assert verdict_line(explain("app", update, "--user", "alice")) == \
        "verdict: log by rule 'alice-logged'"
    assert verdict_line(explain("app", update, "--user", "bob")) == \
        "verdict: allow (no rule matched)"


def test_explain_dry_run_block(explain):
    result = explain("app", '{"createIndexes": "users", "indexes": '
                            '[{"key": {"t": 1}, "name": "t_1", "expireAfterSeconds": 60}]}')
    assert "matches rule 'trial-ttl' (line 16): block (dry-run)" in result.stdout
    assert verdict_line(result) == "verdict: log; would block by rule 'trial-ttl' (dry-run)"
    assert "client sees: the server's own reply (the operation is forwarded)" in result.stdout


def test_explain_dry_run_log_names_its_rule(explain):
    """A dry-run `log` rule matched and no allow rule did: the verdict must name
    that rule, not claim an allow exemption."""
    result = explain("app", '{"dropIndexes": "users", "index": "*"}')
    assert "matches rule 'watch-index-drops' (line 20): log (dry-run)" in result.stdout
    line = verdict_line(result)
    assert "exempted" not in line and "watch-index-drops" in line, line


BUDGET_POLICY = """
holds: {timeout: 5m}
rules:
  - name: families-delete-budget
    match: {namespace: "app.families", operations: [delete]}
    limit: [{documents: 50, per: 1m}, {documents: 300, per: 1h}]
    action: hold
  - name: hold-drops
    match: {namespace: "app.*", operations: [drop]}
    action: hold
"""


def test_explain_within_budget_says_what_applies_not_an_exemption(tmp_path):
    path, _ = write(tmp_path, BUDGET_POLICY)
    result = run("explain", "--config", str(path), "--db", "app", "--command",
                 '{"delete": "families", "deletes": [{"q": {"_id": 1}, "limit": 1}]}')
    assert result.returncode == 0, result
    assert verdict_line(result) == (
        "verdict: allow (within budget: a budget of 50 documents per 1m and 300 documents per 1h "
        "applies, rule 'families-delete-budget'; explain has no live counts: a spent budget "
        "would hold it for an operator)")
    assert "exempted" not in result.stdout
    assert "client sees: the server's own reply (the operation is forwarded)" in result.stdout


def test_explain_hold_says_the_client_waits_not_blocked(tmp_path):
    path, _ = write(tmp_path, BUDGET_POLICY)
    result = run("explain", "--config", str(path), "--db", "app", "--command",
                 '{"drop": "families"}')
    assert result.returncode == 0, result
    assert verdict_line(result) == "verdict: hold by rule 'hold-drops'"
    sees = [line for line in result.stdout.splitlines() if line.startswith("client sees: ")]
    assert len(sees) == 1, result.stdout
    assert "blocked" not in sees[0], sees[0]
    held = "mongoguard: drop on app.families held by rule 'hold-drops': "
    assert sees[0] == (
        "client sees: no reply yet: the operation waits for an operator (mongoguard ctl holds); "
        "approved: the server's own reply; rejected: {ok: 0, code: 13, codeName: "
        f'"Unauthorized", errmsg: "{held}rejected by NAME"}}; not decided within 5m '
        f'(holds.timeout): {{ok: 0, code: 13, codeName: "Unauthorized", errmsg: '
        f'"{held}not approved within 5m; rejected"}}')


def test_explain_not_inspected(explain):
    for db, command in [("app", '{"find": "users", "filter": {}}'),
                        ("app", '{"insert": "users", "documents": [{"a": 1}]}'),
                        ("app", '{"aggregate": "users", "pipeline": [{"$match": {}}], '
                                '"cursor": {}}'),
                        ("app", '{"createIndexes": "users", "indexes": '
                                '[{"key": {"a": 1}, "name": "a_1"}]}')]:
        result = explain(db, command)
        assert result.returncode == 0, result
        assert "not inspected" in result.stdout, result.stdout
        assert verdict_line(result) == "verdict: allow"


def test_explain_bad_input(explain, tmp_path):
    result = explain("app", "{not json")
    assert result.returncode == 2
    assert "not valid extended JSON" in result.stderr
    result = run("explain", "--config", str(tmp_path / "missing.yaml"), "--db", "app",
                 "--command", '{"drop": "users"}')
    assert result.returncode == 1
    assert "cannot read file" in result.stderr
