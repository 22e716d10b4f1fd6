"""A FerretDB backend that authenticates, for the identity tests.

FerretDB 1.24 keeps SCRAM behind `--test-enable-new-auth`: with it, saslStart
speaks SCRAM-SHA-1/SCRAM-SHA-256 (not PLAIN), createUser/usersInfo/dropUser
exist, and every command but hello, ping, saslStart/saslContinue and a few
others requires a finished SCRAM conversation. The first user comes from
`--setup-database`/`--setup-username`/`--setup-password` (created when the
setup database does not exist yet); further users are created through it.

Two things it does not do, which the tests work around:
  - it ignores `speculativeAuthenticate` in hello (no reply field), so a
    driver always falls back to saslStart/saslContinue;
  - `roles` in createUser must be empty (there is no authorization: any
    authenticated user may do anything).

Backend (backend.py) takes no extra server flags, so this subclass starts
the same binary the same way with the auth flags added.
"""

from __future__ import annotations

import os

import pymongo

from backend import Backend

ROOT_USER = "mgroot"
ROOT_PASSWORD = "root-pw-" + os.urandom(6).hex()


class AuthBackend(Backend):
    """FerretDB with SCRAM authentication on and an admin user `ROOT_USER`."""

    root_user = ROOT_USER
    root_password = ROOT_PASSWORD

    def extra_args(self) -> list[str]:
        return [
            "--test-enable-new-auth",
            "--setup-database=admin",
            f"--setup-username={self.root_user}",
            f"--setup-password={self.root_password}",
        ]

    def root_client(self, **kwargs) -> pymongo.MongoClient:
        """A client straight to the backend, logged in as the setup user."""
        kwargs.setdefault("serverSelectionTimeoutMS", 5000)
        return pymongo.MongoClient(self.uri, username=self.root_user,
                                   password=self.root_password, authSource="admin",
                                   authMechanism="SCRAM-SHA-256", **kwargs)

    def create_user(self, name: str, password: str) -> None:
        with self.root_client() as c:
            c.admin.command({"createUser": name, "pwd": password, "roles": [],
                             "mechanisms": ["SCRAM-SHA-256"]})
