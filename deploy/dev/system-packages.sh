#!/usr/bin/env bash
# Debian packages the tests use: Chromium and Firefox for the browser tests, redis-server for Redis tests,
# iproute2 and nftables for the impaired-link test.
# Installs only what is missing, and only where it can (root, or sudo without a password).
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v firefox-esr >/dev/null 2>&1 || command -v firefox >/dev/null 2>&1 || missing+=(firefox-esr)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The impaired-link test: namespaces, veth pairs and tc from iproute2, random loss from nftables.
command -v tc >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "Missing Debian packages: ${missing[*]}. Install them (apt-get install ${missing[*]}), then run again." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing packages ${missing[*]}, and this is not a Debian-like system: install them by hand." >&2
  exit 1
fi
echo "Installing ${missing[*]} from Debian..."
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" fonts-noto-cjk
