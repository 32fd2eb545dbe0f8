"""A real, throwaway redis-server for the tests (Debian's ``redis-server``, which ``.ci/run``
installs when missing), on a free loopback port, its data in a temporary directory.

``aof=True`` keeps an append-only file with ``appendfsync everysec`` (the production setting
the fault tests restart from); ``kill()`` SIGKILLs the server, ``start()`` starts it again on the
same port and directory.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too and exists."""
    import random
    for _ in range(1000):
        port = random.randint(20000, 55000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


class RedisServer:
    def __init__(self, aof: bool = False, extra: list[str] | None = None, port: int | None = None) -> None:
        if not os.path.exists(REDIS_SERVER):
            raise RuntimeError("redis-server is needed for the Redis pool tests: apt-get install redis-server")
        self.dir = tempfile.mkdtemp(prefix="k50core-redis-")
        self.port = port or free_port()
        self.aof = aof
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--protected-mode", "no", "--logfile", os.path.join(self.dir, "log")]
        args += ["--appendonly", "yes", "--appendfsync", "everysec"] if self.aof else ["--appendonly", "no"]
        self.proc = subprocess.Popen(args + self.extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def url(self, namespace: str | None = None) -> str:
        """A state URL with a namespace of its own (a fresh set of pools) unless one is given."""
        return f"redis://127.0.0.1:{self.port}/0?namespace={namespace or 't' + uuid.uuid4().hex[:12]}"

    def aof_tail(self) -> str | None:
        """The append-only file the server is writing to now (Redis 7: the last .incr.aof)."""
        import glob
        found = sorted(glob.glob(os.path.join(self.dir, "appendonlydir", "*.incr.aof")),
                       key=lambda p: int(p.rsplit(".", 3)[-3]))
        return found[-1] if found else None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
