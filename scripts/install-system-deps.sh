#!/usr/bin/env bash
# System packages the tests need on a bare Debian machine (run as root, or with sudo available).
# Installs only what is missing, so a second run costs a second.
set -euo pipefail
PKGS=(
  ffmpeg                        # H.264 test clips (libx264) and an RTSP publisher
  gstreamer1.0-rtsp             # a real RTSP server on loopback for the live-source tests
  gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  python3-gi
  mosquitto                     # a real MQTT broker on loopback for the camera service's tests and soak
  chromium chromium-driver      # a real headless browser for the web view's test (driven by selenium)
  blender                       # carcolor synth renders training crops (Cycles, CPU); a test renders three
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
