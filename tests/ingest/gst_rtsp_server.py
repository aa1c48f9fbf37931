"""A minimal GStreamer RTSP server for ingest tests; runs under the system /usr/bin/python3
(which has gi + GstRtspServer). Prints "READY <port>" once listening. Stand-in until the
project's simulator (vigil.sim) is available.

Usage: gst_rtsp_server.py [--port N] [--codec h264|h265] [--size WxH] [--fps N]
                          [--audio] [--user U --password P]
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--path", default="/stream")
    ap.add_argument("--codec", choices=["h264", "h265"], default="h264")
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument("--audio", action="store_true")
    ap.add_argument("--user")
    ap.add_argument("--password")
    args = ap.parse_args()

    Gst.init(None)
    w, h = args.size.split("x")
    caps = f"video/x-raw,width={w},height={h},framerate={args.fps}/1"
    if args.codec == "h264":
        enc = (
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=300 "
            "! rtph264pay name=pay0 pt=96 config-interval=-1"
        )
    else:
        enc = (
            "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=300 "
            "! rtph265pay name=pay0 pt=96 config-interval=-1"
        )
    launch = f"( videotestsrc is-live=true pattern=ball ! {caps} ! {enc}"
    if args.audio:
        launch += (
            " audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=8000,channels=1 "
            "! mulawenc ! rtppcmupay name=pay1 pt=0"
        )
    launch += " )"

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        basic = GstRtspServer.RTSPAuth.make_basic(args.user, args.password or "")
        auth.add_basic(basic, token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_role_from_structure(
            Gst.Structure.new_from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
        )
        factory.set_permissions(perms)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print("FAILED attach", flush=True)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
