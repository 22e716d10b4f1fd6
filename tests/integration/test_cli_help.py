"""The command line's own words: `mongoguard --help` names every subcommand,
each subcommand answers --help and -h on stdout with exit 0, and a usage
mistake is two lines on stderr (the problem, then where to read more) with
exit code 2. Hints name `mongoguard` only when PATH finds this very binary
under that name; otherwise the path it was run as."""

from __future__ import annotations

import os
import subprocess

import pytest

from harness import PROXY_BIN

needs_proxy = pytest.mark.skipif(not PROXY_BIN.exists(), reason=f"{PROXY_BIN} not built")

SUBCOMMANDS = ("validate", "explain", "ctl")


def run(*args: str, binary: str = str(PROXY_BIN), env: dict | None = None):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, env=env)


@needs_proxy
def test_top_level_help_names_every_subcommand():
    result = run("--help")
    assert result.returncode == 0 and not result.stderr, result
    for name in SUBCOMMANDS:
        assert f"mongoguard {name}" in result.stdout, (name, result.stdout)
        assert f"\n  {name} " in result.stdout, (name, result.stdout)  # and says what it does


@needs_proxy
@pytest.mark.parametrize("name", SUBCOMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_subcommand_answers_help(name, flag):
    result = run(name, flag)
    assert result.returncode == 0, result
    assert result.stdout.strip() and not result.stderr, result
    assert f"mongoguard {name}" in result.stdout, result.stdout


@needs_proxy
@pytest.mark.parametrize("args,problem", [
    (["--bogus"], "mongoguard: unknown option '--bogus'"),
    (["validate"], "mongoguard validate: no FILE to check"),
    (["validate", "a.yaml", "b.yaml"], "mongoguard validate: one FILE only, not also 'b.yaml'"),
    (["explain", "--db", "app"], "mongoguard explain: needs --config FILE, --db DB and --command "
                                 "JSON"),
])
def test_a_usage_error_is_the_problem_and_a_pointer_to_help(args, problem):
    result = run(*args)
    assert result.returncode == 2, result
    assert not result.stdout, result.stdout
    lines = result.stderr.splitlines()
    sub = f" {args[0]}" if args[0] in SUBCOMMANDS else ""
    # Run by its path (PATH does not find it as `mongoguard`): the hint says the path.
    assert lines == [problem, f"Try '{PROXY_BIN}{sub} --help' for more information."], lines


@needs_proxy
def test_the_hint_says_mongoguard_when_path_finds_this_binary(tmp_path):
    (tmp_path / "mongoguard").symlink_to(PROXY_BIN)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ.get('PATH', '')}")
    result = run("validate", env=env)
    assert result.stderr.splitlines()[1] == "Try 'mongoguard validate --help' for more information."
    # Another program called mongoguard first on PATH: the hint names this one by its path.
    other = tmp_path / "other"
    other.mkdir()
    (other / "mongoguard").write_text("#!/bin/sh\nexit 0\n")
    (other / "mongoguard").chmod(0o755)
    env = dict(os.environ, PATH=f"{other}:{tmp_path}:{os.environ.get('PATH', '')}")
    result = run("validate", env=env)
    assert result.stderr.splitlines()[1] == f"Try '{PROXY_BIN} validate --help' for more information."
