"""Starting and always stopping the app's real processes (gunicorn, Celery worker, migrations).

Every process starts in its own session, so its process group holds it and every child it forks
(gunicorn's workers, Celery's pool processes); stopping signals that group by the leader's PID and
escalates to SIGKILL, so no test leaves a worker behind. Output goes to a log file per process,
shown in the assertion message when something goes wrong.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import requests

from tests.support.paths import ENTRYPOINT, REPO_ROOT, VENV_BIN


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_environment(app_env: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment, the app's variables on top, the venv's commands first on PATH."""
    env = dict(os.environ)
    env.update(app_env)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _default_interrupt_signals() -> None:
    """In the child, before exec: SIGINT and SIGQUIT back to their default action, as a terminal starts a
    command. A test suite started in the background (`.ci/run &` from a script) inherits them ignored,
    and a shell cannot trap a signal it was started with ignored: run-local.sh would not see Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class ManagedProcess:
    """One child process with its log; `stop()` is safe to call any number of times."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            list(argv),
            cwd=REPO_ROOT,
            env=process_environment(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_interrupt_signals,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_text(self, last_chars: int = 6000) -> str:
        text = self.log_path.read_text(errors="replace")
        return text[-last_chars:]

    def wait_for_log(self, needle: str, timeout: float) -> None:
        """Wait until `needle` appears in the log; fail with the log if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while needle not in self.log_path.read_text(errors="replace"):
            if not self.running():
                raise AssertionError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {needle!r} after {timeout:.0f} s:\n{self.log_text()}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the whole group at once: a crash, as a power cut or the OOM killer would cause."""
        self._signal_group(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM the group (gunicorn and Celery shut down gracefully on it), SIGKILL what is left."""
        if self.running():
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=30)
        # Children that outlived their leader (a pool process) still carry the group id.
        self._signal_group(signal.SIGKILL)
        if not self._log.closed:
            self._log.close()

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass


def run_to_completion(
    name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path, timeout: float
) -> str:
    """Run a one-shot command (the migrate role); return its output, fail with it on a non-zero exit."""
    process = ManagedProcess(name, argv, env, log_dir)
    try:
        returncode = process.popen.wait(timeout=timeout)
    finally:
        process.stop()
    output = process.log_text(20000)
    assert returncode == 0, f"{name} exited with {returncode}:\n{output}"
    return output


def entrypoint(role: str, *extra: str) -> list[str]:
    """The command docker-compose runs for `role`: the image's entrypoint with the role as argument."""
    return [str(ENTRYPOINT), role, *extra]


def wait_until(
    check: Callable[[], object],
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    logs: Sequence[ManagedProcess] = (),
):
    """Poll `check` until it returns something truthy; return that, or fail after `timeout` seconds.

    The failure message carries the end of each process log in `logs`: what the worker said is
    usually the whole explanation.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {process.name} log ---\n{process.log_text()}" for process in logs)
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{tails}")
        time.sleep(interval)


def wait_for_http(url: str, process: ManagedProcess, timeout: float = 60.0) -> None:
    """Wait until `url` answers 200 while `process` (the server behind it) is alive."""

    def answered() -> bool:
        if not process.running():
            raise AssertionError(
                f"{process.name} exited with {process.popen.returncode}:\n{process.log_text()}"
            )
        try:
            return requests.get(url, timeout=10).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still starting
            return False

    wait_until(answered, timeout, interval=0.3, what=f"{url} to answer 200")
