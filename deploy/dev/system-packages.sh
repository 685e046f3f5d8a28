#!/usr/bin/env bash
# Debian packages the tests use: Chromium and Firefox for the browser tests, redis-server for Redis tests,
# iproute2 and nftables for the impaired-link test, and nginx (with its stream module), coturn and pg_dump for
# the deploy tests, which start deploy/'s whole topology; and where a docker client has no compose plugin,
# Debian's docker-compose, with which the tests check deploy/docker-compose.yml.
# Installs only what is missing, and only where it can (root, or sudo without a password).
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v firefox-esr >/dev/null 2>&1 || command -v firefox >/dev/null 2>&1 || missing+=(firefox-esr)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The impaired-link test: namespaces, veth pairs and tc from iproute2, random loss from nftables.
command -v tc >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
# The deploy tests (tests/deploy): nginx in front, with the stream module that shares 443 with TURN over TLS
# (a module of its own in Debian), coturn, and pg_dump for backups.
PATH="$PATH:/usr/sbin:/sbin"
services=()
if ! command -v nginx >/dev/null 2>&1; then
  missing+=(nginx libnginx-mod-stream)
  services+=(nginx)
elif [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ] && ! nginx -V 2>&1 | grep -qE -- '--with-stream( |$)'; then
  missing+=(libnginx-mod-stream)
fi
if ! command -v turnserver >/dev/null 2>&1; then
  missing+=(coturn)
  services+=(coturn)
fi
command -v pg_dump >/dev/null 2>&1 || missing+=(postgresql-client)
# tests/deploy/test_compose.py reads deploy/docker-compose.yml with `docker compose config`, or with Debian 12's
# docker-compose (v1) where the client has no compose plugin. Neither needs a Docker daemon; without a docker
# client nothing is installed (the test is skipped, saying so). Optional: where it cannot be installed, the test is
# skipped and nothing else fails.
optional=()
if command -v docker >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1 \
    && ! command -v docker-compose >/dev/null 2>&1; then
  optional+=(docker-compose)
fi
[ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0

cannot_install() {
  if [ ${#missing[@]} -eq 0 ]; then
    echo "Not installed: ${optional[*]} ($1); the compose file's check will be skipped." >&2
    exit 0
  fi
  echo "Missing packages: ${missing[*]} ${optional[*]} ($1). Install them, then run again." >&2
  exit 1
}
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  cannot_install "not root, and no sudo without a password: apt-get install them"
fi
command -v apt-get >/dev/null 2>&1 || cannot_install "not a Debian-like system: install them by hand"
missing+=("${optional[@]}")
echo "Installing ${missing[*]} from Debian..."
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" fonts-noto-cjk
# The tests start their own nginx and coturn on free ports: the packages' system services, installed just now,
# would only hold ports 80 and 3478 on this machine, so they are stopped and left disabled.
if [ ${#services[@]} -gt 0 ] && [ -d /run/systemd/system ]; then
  "${sudo[@]}" systemctl disable --now "${services[@]}" >/dev/null 2>&1 || true
fi
