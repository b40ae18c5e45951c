"""The local stack's processes: one managed service's files, start, health wait and pid checks.

Used by ``services.stack`` for the broker and FerretDB; nothing here knows either.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from conf.errors import EarshotError

START_TIMEOUT_S = 90


class StackError(EarshotError):
    """A local service could not be installed, started or stopped."""


@dataclass(frozen=True)
class Service:
    """One managed process: where it keeps its files and how it is checked."""

    name: str
    home: Path
    host: str
    port: int
    managed: bool  # False when the settings point at a service elsewhere

    @property
    def pid_file(self) -> Path:
        return self.home / "pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "stdout.log"


def started_pid(service: Service) -> int | None:
    """The pid of the process ``up`` started for ``service``, if it is still running (None: not ours, or down)."""
    return _read_pid(service)


def _read_pid(service: Service) -> int | None:
    try:
        pid = int(service.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_ours(pid, service) else None


def _is_ours(pid: int, service: Service) -> bool:
    """True when ``pid`` is alive and its command line is the one ``up`` started."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return str(service.home) in cmdline


def _spawn(service: Service, argv: list[str]) -> subprocess.Popen[bytes]:
    service.log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(service.log_file, "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv built from settings
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=service.home,
            start_new_session=True,  # survives the shell that ran `up`
        )
    service.pid_file.write_text(f"{proc.pid}\n")
    return proc


def _wait_healthy(service: Service, check, proc: subprocess.Popen[bytes]) -> None:
    # Liveness comes from the Popen handle: right after fork, /proc/<pid>/cmdline may
    # still show the parent's command line, so _is_ours() is no test of a fresh child.
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            tail = _tail(service.log_file)
            raise StackError(f"{service.name} exited during start; last log lines:\n{tail}")
        time.sleep(0.5)
    raise StackError(
        f"{service.name} did not answer on {service.host}:{service.port} within "
        f"{START_TIMEOUT_S} s; see {service.log_file}"
    )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _run_checked(argv: list[str], *, what: str, cwd: Path | None = None) -> None:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)  # noqa: S603
    if result.returncode != 0:
        raise StackError(f"{what} failed ({result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}")
