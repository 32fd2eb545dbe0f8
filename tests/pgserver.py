"""A real, throwaway PostgreSQL server for the storage tests.

``K50CORE_POSTGRES_DSN`` points the tests at a server you run; otherwise
Debian's ``postgresql`` binaries (``apt-get install postgresql``, which
``.ci/run`` does) start a private cluster in a temporary directory, reached
over a Unix socket only, and stop it afterwards.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PostgresServer:
    def __init__(self) -> None:
        self.dir: str | None = None
        self.dsn = os.environ.get("K50CORE_POSTGRES_DSN")
        if self.dsn:
            return
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL is needed for the storage tests: apt-get install postgresql, "
                               "or set K50CORE_POSTGRES_DSN to a server's DSN")
        self.dir = tempfile.mkdtemp(prefix="k50core-pg-")
        data, sock = os.path.join(self.dir, "data"), self.dir
        as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
            shutil.chown(self.dir, "postgres")
            os.chmod(self.dir, 0o755)
            as_user = ["runuser", "-u", "postgres", "--"]
        user = "postgres" if as_user else None
        subprocess.run(as_user + [initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, capture_output=True)
        port = 20000 + os.getpid() % 20000
        subprocess.run(as_user + [pg_ctl, "-D", data, "-w", "-l", os.path.join(self.dir, "log"), "-o",
                                  f"-k {sock} -p {port} -c listen_addresses='' -c fsync=on", "start"],
                       check=True, capture_output=True)
        # immediate: the cluster is deleted next, so the shutdown checkpoint (tens of seconds with
        # fsync on and a database per test) would write pages nobody reads
        self._stop = as_user + [pg_ctl, "-D", data, "-m", "immediate", "stop"]
        self.dsn = f"postgresql://{user or 'postgres'}@/postgres?host={sock}&port={port}"

    def database(self) -> str:
        """A fresh empty database on the server; its DSN."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        base, _, query = self.dsn.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")

    def stop(self) -> None:
        if self.dir is None:
            return
        subprocess.run(self._stop, capture_output=True)
        for _ in range(50):
            if not os.path.exists(os.path.join(self.dir, "data", "postmaster.pid")):
                break
            time.sleep(0.1)
        # A database per test makes about a gigabyte by the suite's end; deleting it file by file held
        # the session's last teardown for over a minute, and nothing needs to wait for it.
        subprocess.Popen(["rm", "-rf", self.dir], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
