"""Optional profiles of the worker processes during a timed phase, with py-spy (`--profile DIR`).

py-spy is not a dependency: `pip install py-spy` to use this. Each process gets a raw
(collapsed stacks) file; `summarize` folds them into the functions that take the most samples.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil

from bench.processes import tree

RATE_HZ = 97
"""Samples per second: off the round 100, so sampling does not beat with periodic work."""


class Profiler:
    """py-spy record attached to every Python process of one tree, until stop()."""

    def __init__(self, out_dir: Path, name: str, root_pid: int):
        self.out_dir = out_dir
        self.name = name
        self.root_pid = root_pid
        self.procs: list[subprocess.Popen] = []
        self.files: list[Path] = []

    def start(self) -> None:
        binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(binary).exists():
            raise RuntimeError("--profile needs py-spy: pip install py-spy")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for proc in tree(self.root_pid):
            try:
                if "celery" not in " ".join(proc.cmdline()):
                    continue
            except psutil.NoSuchProcess:
                continue
            path = self.out_dir / f"{self.name}-{proc.pid}.txt"
            self.files.append(path)
            self.procs.append(
                subprocess.Popen(
                    [
                        binary,
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--rate",
                        str(RATE_HZ),
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--gil",
                        "-o",
                        str(path),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(2)  # SIGINT: py-spy writes its file and exits
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def summarize(files: list[Path], top: int = 25) -> str:
    """Self and inclusive sample shares per function over every file, idle threads left out."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = [f for f in stack.split(";") if not f.startswith(("thread", "process"))]
            if not frames or _idle(frames[-1]):
                continue
            n = int(count)
            total += n
            own[_short(frames[-1])] += n
            for frame in {_short(f) for f in frames}:
                inclusive[frame] += n
    lines = [f"busy samples: {total}", "self:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)] if total else []
    lines.append("inclusive:")
    lines += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)] if total else []
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.split(':')[0]).name})"


def _idle(frame: str) -> bool:
    """Frames where a thread waits, which py-spy samples unless --idle is off for them."""
    return any(
        word in frame
        for word in (
            "wait (threading",
            "_wait_for_tstate_lock",
            "select (",
            "poll (",
            "acquire (",
            "get (queue",
            "epoll",
            "sleep (",
        )
    )
