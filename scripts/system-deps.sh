#!/usr/bin/env bash
# Installs what the tests and the demo need from Debian's packages, only when it is missing:
# Python with venv, Prometheus (which also brings promtool), VictoriaMetrics (the second store the
# tests run against), nats-server and, for the tests, Chromium. Safe to repeat.
set -euo pipefail

packages=()
command -v python3 >/dev/null 2>&1 || packages+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || packages+=(python3-venv)
command -v prometheus >/dev/null 2>&1 || packages+=(prometheus)
command -v promtool >/dev/null 2>&1 || packages+=(prometheus)
command -v victoria-metrics >/dev/null 2>&1 || packages+=(victoria-metrics)
# Debian puts nats-server in /usr/sbin, which is not on every user's PATH.
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || packages+=(nats-server)
# Headless Chromium renders the gate's HTML report in the tests; the demo does not need it.
if [ "${1:-}" = "--with-browser" ]; then
  command -v chromium >/dev/null 2>&1 || packages+=(chromium)
fi

if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to install: ${packages[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing Debian packages: ${packages[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
