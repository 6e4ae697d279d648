#!/usr/bin/env bash
# Installs the Debian packages podway needs, only those missing. Idempotent.
#   scripts/install-deps.sh run    what `make up` needs
#   scripts/install-deps.sh test   what `make test` needs too (etcd, the Python client, ...)
set -euo pipefail
want=(ca-certificates curl iproute2 util-linux sqlite3 protobuf-compiler containernetworking-plugins nginx busybox python3 conntrack nftables)
if [ "${1:-run}" = test ]; then
  want+=(etcd-server dnsutils python3-pip haproxy libnginx-mod-stream openssl nghttp2-client)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
if ! command -v kubectl >/dev/null; then
  echo "kubectl is missing: install kubectl 1.32 to drive podway" >&2
  [ "${1:-run}" = test ] && exit 1
fi
if [ "${1:-run}" = test ]; then
  python3 -c 'import kubernetes' 2>/dev/null || python3 -m pip install -q kubernetes 2>/dev/null || python3 -m pip install -q --break-system-packages kubernetes
fi
