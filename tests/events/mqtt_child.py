"""A publisher in a child process, for the last-will test: it connects, says it is ready
on stdout and waits to be killed (so its socket closes without an MQTT DISCONNECT).

Usage: python -m tests.events.mqtt_child <port>
"""

from __future__ import annotations

import sys
import time

from vigil.config.events_model import MqttConfig
from vigil.events.mqtt import MqttPublisher


def main() -> None:
    port = int(sys.argv[1])
    cfg = MqttConfig(host="127.0.0.1", port=port, client_id="vigil-child", keepalive=60)
    pub = MqttPublisher(cfg, cameras=["cam1"])
    pub.start()
    deadline = time.monotonic() + 10
    while not pub.stats.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    print("ready" if pub.stats.connected else "failed", flush=True)
    time.sleep(60)


if __name__ == "__main__":
    main()
