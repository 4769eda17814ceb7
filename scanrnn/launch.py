"""Run N processes of one data-parallel command on this machine: ``python -m scanrnn.launch``.

::

    python -m scanrnn.launch --processes 2 -- scanrnn train --devices all --steps 20

starts the command N times, each with ``SCANRNN_COORDINATOR=127.0.0.1:PORT``,
``SCANRNN_NUM_PROCESSES=N`` and ``SCANRNN_PROCESS_ID=0..N-1`` in its environment
(read by :func:`scanrnn.parallel.initialize`; a free port unless ``--port``).
Ctrl-C (SIGINT) and SIGTERM are passed on to every process.  When one process
fails, the others are stopped and the launcher exits with that process's exit
status, after one line naming it.  On several machines run one command per host
instead, with the same variables (see docs/parallel.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

from .parallel import ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID

#: Seconds the other processes get to stop (SIGTERM) before they are killed.
GRACE_S = 10.0
PREFIX = "scanrnn.launch"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it: bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def child_env(rank: int, processes: int, coordinator: str, base=None) -> dict:
    """The environment of process ``rank``: ``base`` (default ``os.environ``) plus the run's."""
    env = dict(os.environ if base is None else base)
    env.update({ENV_COORDINATOR: coordinator, ENV_NUM_PROCESSES: str(processes),
                ENV_PROCESS_ID: str(rank)})
    return env


def exit_status(returncode: int) -> int:
    """A shell-style status: a process killed by signal S gives 128+S."""
    return 128 - returncode if returncode < 0 else returncode


def describe(returncode: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL (exit status 137)``."""
    if returncode >= 0:
        return f"exit code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by {name} (exit status {exit_status(returncode)})"


class Launcher:
    """N child processes of one command; :meth:`run` waits for them and returns a status."""

    def __init__(self, command, processes: int, host: str = "127.0.0.1", port: int | None = None,
                 grace_s: float = GRACE_S, poll_s: float = 0.1):
        if processes < 1:
            raise ValueError(f"--processes must be at least 1, got {processes}")
        if not command:
            raise ValueError("no command to run: give it after '--'")
        self.command = list(command)
        self.processes = processes
        self.coordinator = f"{host}:{port or free_port(host)}"
        self.grace_s, self.poll_s = grace_s, poll_s
        self.children: list[subprocess.Popen] = []
        self._signal = None

    def start(self):
        """Start every process (each in its own session, so signals reach it once, from us)."""
        for rank in range(self.processes):
            env = child_env(rank, self.processes, self.coordinator)
            self.children.append(subprocess.Popen(self.command, env=env,
                                                  start_new_session=True))

    def _on_signal(self, signum, frame):
        self._signal = signum
        self._send(signum)

    def _send(self, signum):
        for child in self.children:
            if child.poll() is None:
                try:
                    child.send_signal(signum)
                except ProcessLookupError:
                    pass

    def stop_all(self):
        """SIGTERM every running process, then SIGKILL what is left after the grace period."""
        self._send(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for child in self.children:
            try:
                child.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def run(self) -> int:
        """Start, wait; 0 when every process succeeded, else the failed one's exit status."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            return self._wait()
        finally:
            self.stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _wait(self) -> int:
        while True:
            codes = [child.poll() for child in self.children]
            failed = [(rank, code) for rank, code in enumerate(codes) if code not in (None, 0)]
            if failed:
                rank, code = failed[0]
                stopped = "" if all(c is not None for c in codes) else "; stopping the others"
                what = "failed" if self._signal is None else \
                    f"ended after {signal.Signals(self._signal).name}"
                print(f"{PREFIX}: process {rank} of {self.processes} {what} with "
                      f"{describe(code)}{stopped}", file=sys.stderr, flush=True)
                return exit_status(code)
            if all(code == 0 for code in codes):
                return 0
            time.sleep(self.poll_s)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m scanrnn.launch",
        description="Run N processes of one data-parallel command on this machine, joined "
                    "through $SCANRNN_COORDINATOR, $SCANRNN_NUM_PROCESSES, $SCANRNN_PROCESS_ID.",
        epilog="example: python -m scanrnn.launch --processes 2 -- scanrnn train --steps 20")
    parser.add_argument("--processes", "-n", type=int, required=True,
                        help="how many processes to start")
    parser.add_argument("--port", type=int, default=None,
                        help="the coordinator's port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="the coordinator's address")
    parser.add_argument("--grace", type=float, default=GRACE_S,
                        help="seconds the others get to stop after one fails (then SIGKILL)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the command, after '--'")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("no command to run: give it after '--'")
    if args.processes < 1:
        parser.error(f"--processes must be at least 1, got {args.processes}")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    launcher = Launcher(args.command, args.processes, args.host, args.port, args.grace)
    try:
        return launcher.run()
    except FileNotFoundError as exc:
        print(f"{PREFIX}: cannot start {args.command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main())
