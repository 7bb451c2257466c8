"""A throw-away PostgreSQL cluster for tests: ``initdb`` in a temporary folder, ``pg_ctl``
on a free loopback port, a login role with a password kept in a ``.pgpass`` file.

The server binaries are found on PATH or in Debian's ``/usr/lib/postgresql/N/bin``. When
the tests run as root (CI containers), the cluster belongs to the ``postgres`` system user,
since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["TempCluster", "find_bin"]

ROLE = "reviewer"
PASSWORD = "s3cret-Review-pw"


def find_bin(name: str) -> str | None:
    """The path of a PostgreSQL server program, newest version first; None when absent."""
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return cands[-1] if cands else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempCluster:
    """A PostgreSQL server for one test run; :meth:`stop` removes everything it made."""

    def __init__(self):
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if not (initdb and pg_ctl):
            raise FileNotFoundError("PostgreSQL server programs (initdb, pg_ctl) are not installed")
        self.pg_ctl = pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="napari-spine-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o755)
        self._sh([initdb, "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions"])
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=60")
        self._sh([pg_ctl, "-D", str(self.data), "-o", opts, "-w", "-t", "60", "-l",
                  str(self.root / "server.log"), "start"])
        self.pgpass = self.root / "pgpass"
        self.pgpass.write_text(f"127.0.0.1:{self.port}:*:{ROLE}:{PASSWORD}\n")
        os.chmod(self.pgpass, 0o600)
        self.admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        self._n = 0

    def _sh(self, cmd: list[str]) -> None:
        res = subprocess.run(self._as + cmd, capture_output=True, text=True, cwd=self.root)
        if res.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr.strip() or res.stdout.strip()}")

    def admin(self, sql: str, dbname: str = "postgres"):
        """Run one statement as the superuser over the cluster's socket; its rows, if any."""
        import psycopg

        with psycopg.connect(host=str(self.root), port=self.port, user="postgres", dbname=dbname,
                             autocommit=True) as con:
            cur = con.execute(sql)
            return cur.fetchall() if cur.description else []

    def new_database(self) -> str:
        """A fresh database owned by the login role; its URL (no password in it)."""
        self._n += 1
        name = f"review_{self._n}"
        self.admin(f"CREATE DATABASE {name} OWNER {ROLE}")
        return self.url(name)

    def url(self, dbname: str, user: str = ROLE, password: str | None = None) -> str:
        """``postgresql://user[:password]@127.0.0.1:port/dbname``."""
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        try:
            self._sh([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
