"""Camera simulator: RTSP cameras from real footage or test patterns, for demos, tests and
benchmarks. See ``docs/simulator.md``.

``vigil.sim.controller`` is the API (``Simulator``, ``SimCamera``), ``vigil.sim.media``
encodes and caches clips and reads frame stamps, ``vigil.sim.cli`` is ``vigil simulate``.
``rtsp_server.py`` is not imported here: it runs under the system Python with GStreamer.
"""

from vigil.sim.controller import SimCamera, Simulator, SimulatorError, find_free_port
from vigil.sim.media import ClipSpec, MediaError, PreparedClip, prepare_clip, read_stamp

__all__ = [
    "ClipSpec",
    "MediaError",
    "PreparedClip",
    "SimCamera",
    "Simulator",
    "SimulatorError",
    "find_free_port",
    "prepare_clip",
    "read_stamp",
]
