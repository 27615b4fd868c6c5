"""A throwaway PostgreSQL server on 127.0.0.1 that tests and the chaos run may stop and restart.

It uses the server's own tools (Debian keeps `initdb` and `pg_ctl` in
/usr/lib/postgresql/*/bin; `.ci/run` installs them). As root, the server runs as the
`postgres` user, as `.ci/run` does: `initdb` refuses to run as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Durability off: the database dies with the test, which needs speed, not crash safety.
_FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def pg_bin() -> Path | None:
    """The newest PostgreSQL server's bin directory, or None when none is installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name))
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PgServer:
    """One server in its own directory; `url` reaches its `postgres` database without a password."""

    bin: Path
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def create(cls, parent: Path | None = None) -> PgServer:
        """initdb a new cluster and start it; RuntimeError saying why when that cannot be done."""
        bin_dir = pg_bin()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL server is installed (apt-get install postgresql)")
        root = Path(tempfile.mkdtemp(prefix="ts-pg-", dir=parent))
        server = cls(bin_dir, root, _free_port())
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        server._run("initdb", "-D", str(root / "data"), "-A", "trust", "-U", "postgres")
        server.start()
        return server

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}"
            )

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} {_FAST}"
        self._run(
            "pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session at once (an outage); ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop_command(self) -> list[str]:
        """The argv that stops this server, for another process to run."""
        argv = [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"]
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)
