#!/usr/bin/env bash
# Installs the Debian packages the tests run for real (redis, nats, haproxy, prometheus), only when missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v nats-server >/dev/null || need+=(nats-server)
command -v haproxy >/dev/null || need+=(haproxy)
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
if ((${#need[@]})); then
  echo "installing Debian packages: ${need[*]}"
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for bin in redis-server nats-server haproxy prometheus promtool; do
  command -v "$bin" >/dev/null || { echo "FATAL: $bin is still missing after install" >&2; exit 1; }
done
