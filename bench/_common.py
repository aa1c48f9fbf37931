"""Helpers shared by the benchmarks: per-process CPU and memory from ``/proc``, machine and
load information, and result tables (Rich on a terminal, Markdown otherwise or on request).

Only the standard library is imported at module level, so a benchmark's child process
(e.g. the recorder runner of ``bench/record.py``) does not pay for Rich in its own RSS.

CPU is ``utime + stime`` from ``/proc/<pid>/stat`` (all threads, clock ticks), read at the
start and the end of a measuring interval; "100 %" is one core busy for the whole interval.
RSS is ``VmRSS`` and PSS the ``Pss`` of ``/proc/<pid>/smaps_rollup``, sampled in a
background thread; PSS divides shared pages (libraries, the page cache of mapped files)
among the processes that map them, so unlike RSS it can be summed over many processes.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


# -- machine ---------------------------------------------------------------------------------


def loadavg() -> tuple[float, float, float]:
    with open("/proc/loadavg") as f:
        a, b, c = f.read().split()[:3]
    return float(a), float(b), float(c)


def load_text() -> str:
    a, b, c = loadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


def tool_version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return out.splitlines()[0].strip() if out else "unavailable"


def machine_info() -> dict[str, str]:
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "memory": f"{mem_total_gb():.0f} GB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ffmpeg": tool_version(["/usr/bin/ffmpeg", "-version"]),
        "load average": load_text(),
    }


def print_machine(info: dict[str, str] | None = None) -> dict[str, str]:
    info = info or machine_info()
    for k, v in info.items():
        print(f"{k:>13}: {v}")
    print(f"{'command':>13}: {' '.join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])}")
    return info


def wait_for_load(max_load: float, max_wait: float) -> str:
    """Wait (up to ``max_wait`` s) for the 1-minute load average to drop below ``max_load``.

    The machine may be shared: measuring during someone else's test run gives noise, not
    numbers. Returns the load average at the moment measuring starts, for the report."""
    deadline = time.monotonic() + max_wait
    announced = False
    while loadavg()[0] >= max_load and time.monotonic() < deadline:
        if not announced:
            print(
                f"  load average {load_text()} >= {max_load}: waiting up to {max_wait:.0f} s",
                flush=True,
            )
            announced = True
        time.sleep(5)
    return load_text()


# -- /proc sampling --------------------------------------------------------------------------


def cpu_times(pid: int) -> tuple[int, int] | None:
    """(utime, stime) of ``pid`` (all its threads), in clock ticks; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    rest = data[data.rindex(b")") + 2 :].split()
    return int(rest[11]), int(rest[12])  # fields 14 and 15 of proc(5)


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of ``pid`` in clock ticks; None if it is gone."""
    t = cpu_times(pid)
    return None if t is None else t[0] + t[1]


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of every thread of ``pid`` so far."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def rss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return 0


def pss_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return 0


def thread_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


@dataclass
class Usage:
    """What a group of processes used over one interval."""

    seconds: float  # wall time of the interval
    cpu_s: float  # CPU seconds (user + system), summed over the processes
    sys_s: float  # of which system (kernel) time
    ctx_switches: int  # context switches of all threads over the interval
    rss_peak: int
    rss_mean: float
    pss_peak: int
    pss_mean: float
    samples: int
    procs: int

    @property
    def cpu_pct(self) -> float:
        """CPU as percent of one core over the interval."""
        return 100.0 * self.cpu_s / self.seconds if self.seconds > 0 else 0.0

    @property
    def sys_pct(self) -> float:
        return 100.0 * self.sys_s / self.seconds if self.seconds > 0 else 0.0

    @property
    def ctx_per_s(self) -> float:
        return self.ctx_switches / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ProcSampler:
    """Measures CPU (start/end tick difference) and memory (sampled) of a set of pids.

    ``pids`` is a callable so the set may change (processes are summed per sample; a
    process that exits mid-interval keeps the CPU it used up to its last sample).
    """

    pids: Callable[[], Iterable[int]]
    interval: float = 0.5
    pss: bool = True
    _start_ticks: dict[int, tuple[int, int]] = field(default_factory=dict)
    _last_ticks: dict[int, tuple[int, int]] = field(default_factory=dict)
    _start_ctx: dict[int, int] = field(default_factory=dict)
    _last_ctx: dict[int, int] = field(default_factory=dict)
    _rss: list[int] = field(default_factory=list)
    _pss: list[int] = field(default_factory=list)
    _t0: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ProcSampler:
        self._t0 = time.monotonic()
        for pid in self.pids():
            t = cpu_times(pid)
            if t is not None:
                self._start_ticks[pid] = t
                self._last_ticks[pid] = t
                self._start_ctx[pid] = self._last_ctx[pid] = context_switches(pid)
        self._sample()
        self._thread = threading.Thread(target=self._run, name="proc-sampler", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        rss = pss = 0
        for pid in self.pids():
            t = cpu_times(pid)
            if t is None:
                continue
            self._start_ticks.setdefault(pid, t)  # a process that appeared mid-interval
            self._last_ticks[pid] = t
            rss += rss_bytes(pid) or 0
            if self.pss:
                pss += pss_bytes(pid) or 0
        self._rss.append(rss)
        self._pss.append(pss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> Usage:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        for pid in self._start_ctx:
            c = context_switches(pid)
            if c:
                self._last_ctx[pid] = c
        seconds = time.monotonic() - self._t0
        user = sum(self._last_ticks[p][0] - self._start_ticks[p][0] for p in self._last_ticks)
        kern = sum(self._last_ticks[p][1] - self._start_ticks[p][1] for p in self._last_ticks)
        n = len(self._rss)
        return Usage(
            seconds=seconds,
            cpu_s=(user + kern) / CLK_TCK,
            sys_s=kern / CLK_TCK,
            ctx_switches=sum(self._last_ctx[p] - self._start_ctx[p] for p in self._start_ctx),
            rss_peak=max(self._rss, default=0),
            rss_mean=sum(self._rss) / n if n else 0.0,
            pss_peak=max(self._pss, default=0),
            pss_mean=sum(self._pss) / n if n else 0.0,
            samples=n,
            procs=len(self._last_ticks),
        )


# -- child processes ---------------------------------------------------------------------------


def stop_processes(
    procs: Sequence[subprocess.Popen[Any]], sig: int = signal.SIGTERM, timeout: float = 15.0
) -> None:
    """Signal every process (by its own pid), wait for all, SIGKILL the stragglers."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(sig)
    deadline = time.monotonic() + timeout
    for p in procs:
        left = max(0.1, deadline - time.monotonic())
        try:
            p.wait(left)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait(5)


def require(path: str, hint: str) -> str:
    found = shutil.which(path)
    if found is None:
        raise SystemExit(f"{path} not found: {hint}")
    return found


# -- formatting --------------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / MB:.1f}"


def pct(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f} %"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b > 0 else "n/a"


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100) of a non-empty sequence."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|")

    out = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    out.append("|" + "|".join("---" for _ in headers) + "|")
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def print_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], markdown: bool = False
) -> None:
    """A Rich table on a terminal; Markdown (pasteable into bench/README.md) when asked or
    when the output is not a terminal."""
    if not markdown and sys.stdout.isatty():
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            pass
        else:
            table = Table(title=title, title_justify="left")
            for h in headers:
                table.add_column(str(h), justify="right" if h != headers[0] else "left")
            for r in rows:
                table.add_row(*(str(v) for v in r))
            Console().print(table)
            return
    print(f"\n**{title}**\n")
    print(markdown_table(headers, rows))
    print()
