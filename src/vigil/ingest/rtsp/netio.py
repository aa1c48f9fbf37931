"""Socket plumbing for the RTSP client: an interruptible connect and kernel receive
timeouts.

Why not Python's socket timeouts while streaming: with a timeout set, CPython polls the
socket before every ``recv`` (two system calls per read). A blocking socket with
``SO_RCVTIMEO`` makes the kernel enforce the timeout inside the single ``recv``, which then
fails with ``EAGAIN`` (``BlockingIOError``). Where the platform refuses the option, Python's
timeout is used instead (correct, a little costlier).

Why a non-blocking connect waited for with ``poll``: ``interrupt()`` shuts the socket down
from another thread, which ends a ``poll`` at once; the caller checks its interrupt flag
right after ``connect_ex`` for an interrupt that came before the socket was connecting.
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import time
from collections.abc import Callable

_TIMEVAL = struct.Struct("@ll")  # struct timeval {time_t; suseconds_t} on Linux


def timeval(seconds: float) -> bytes:
    """``struct timeval`` for ``SO_RCVTIMEO``/``SO_SNDTIMEO`` (at least 1 ms: 0 means
    "no timeout" to the kernel)."""
    seconds = max(0.001, seconds)
    whole = int(seconds)
    return _TIMEVAL.pack(whole, int((seconds - whole) * 1_000_000))


def connect(
    sock: socket.socket,
    addr: tuple[object, ...],
    deadline: float,
    interrupted: Callable[[], bool],
) -> None:
    """Connect ``sock`` to ``addr`` by ``deadline`` (monotonic). Raises TimeoutError,
    InterruptedError (``interrupted()`` was true) or the connect error as OSError."""
    sock.setblocking(False)
    err = sock.connect_ex(addr)
    if interrupted():  # an interrupt may have come before connect_ex
        raise InterruptedError
    if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
        raise OSError(err, errno.errorcode.get(err, "connect failed"))
    if err:
        poller = select.poll()
        poller.register(sock, select.POLLOUT)
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(left * 1000):
            raise TimeoutError
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, errno.errorcode.get(err, "connect failed"))


def use_kernel_timeouts(sock: socket.socket, timeout: float) -> bool:
    """Make ``sock`` blocking with kernel receive/send timeouts; False (and a Python
    timeout instead) if the platform refuses them."""
    try:
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval(min(timeout, 5.0)))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval(timeout))
        return True
    except (OSError, struct.error):
        sock.settimeout(timeout)
        return False


def set_recv_timeout(sock: socket.socket, seconds: float, kernel: bool) -> None:
    """Change the receive timeout set up by :func:`use_kernel_timeouts`."""
    try:
        if kernel:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval(seconds))
        else:
            sock.settimeout(seconds)
    except OSError:
        pass  # closed under us: the next recv reports it
