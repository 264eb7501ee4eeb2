"""Worker subprocesses for the tests that need a jax of their own (forced devices, jax.distributed).

:func:`run_once` runs them once per pytest session, however many pytest-xdist workers ask;
:func:`run_side_by_side` starts several at once and always reaps them, on success, failure or timeout.
"""

import fcntl
import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable


def run_once(tmp_path_factory, name: str, run: Callable[[pathlib.Path], None]) -> pathlib.Path:
    """Calls ``run(directory)`` the first time a test of this session asks for ``name``; returns directory.

    Under pytest-xdist the directory sits in the session's shared temporary root and a file lock makes the
    other workers wait for the first one's run and then read its results.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this session's, shared by its xdist workers
    directory = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (directory / "done").exists():
            directory.mkdir(exist_ok=True)
            try:
                run(directory)
            finally:
                (directory / "done").touch()
    return directory


def run_side_by_side(commands: dict[str, tuple[list[str], dict]], directory: pathlib.Path, timeout: float):
    """Runs ``{name: (argv, env)}`` concurrently, each writing its output to ``directory/NAME.log``.

    Each log ends with how its process ended: its exit status, or killed. Whatever happens (a process that
    exits early, processes still running ``timeout`` seconds after the start, an exception here), none is
    left running on return.
    """
    procs, logs = {}, {name: directory / f"{name}.log" for name in commands}
    try:
        for name, (argv, env) in commands.items():
            with open(logs[name], "w") as log:
                procs[name] = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        for name, proc in procs.items():
            try:
                status = f"exit status {proc.wait(timeout=max(deadline - time.monotonic(), 0.1))}"
            except subprocess.TimeoutExpired:
                status = f"still running after {timeout} s: killed"
            with open(logs[name], "a") as log:
                log.write(f"\n[{status}]\n")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (another process may take it before us)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_modes_once(tmp_path_factory, name: str, worker: str, modes, devices: int) -> pathlib.Path:
    """Runs ``tests/WORKER MODE OUT`` for every mode side by side, once per session, on ``devices`` forced CPU devices.

    ``OUT`` is ``directory/MODE`` (the worker writes its results there), and its output goes to
    ``directory/MODE.log``; returns the directory. XLA's cheap optimisation settings: compiling is most of the
    workers' time, and what they check is where the computation runs, not how well it is optimised.
    """
    here = pathlib.Path(__file__).parent
    env = dict(
        os.environ,
        XLA_FLAGS=(
            f"--xla_force_host_platform_device_count={devices} "
            "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
        ),
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([str(here.parent), os.environ.get("PYTHONPATH", "")]),
    )

    def run(directory):
        argv = [sys.executable, str(here / worker)]
        run_side_by_side({mode: ([*argv, mode, str(directory / mode)], env) for mode in modes}, directory, timeout=600)

    return run_once(tmp_path_factory, name, run)
