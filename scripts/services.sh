#!/usr/bin/env bash
# Starts the local services the test-suite talks to (Mosquitto) when they are not already
# running. On machines that start them at boot this does nothing.
set -uo pipefail
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_open 1883; then
  echo "services: starting mosquitto on 127.0.0.1:1883"
  if [ -f /etc/mosquitto/mosquitto.conf ]; then
    mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
  else
    mosquitto -d -p 1883 || true
  fi
  for _ in $(seq 1 20); do port_open 1883 && break; sleep 0.25; done
fi
exit 0
