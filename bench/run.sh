#!/usr/bin/env bash
# podway's benchmarks (see bench/README.md): builds podway and podway-bench in release mode,
# starts a throwaway etcd on loopback for the baselines, runs podway-bench, and prints its
# Markdown tables. Everything started here lives in one temp dir; the control plane listens on
# 127.0.0.1 only; node clusters (root only) use the bench's own names and ranges
# (pwbench-*, 172.31.230-239.0/24, 10.230-239.0.0/16). All of it is stopped and removed on exit,
# failure, Ctrl-C or timeout: node clusters with `podway down`.
#
# Knobs (environment): BENCH_PHASES (control-plane,nodes,services,rotation,ingress), BENCH_SERVICES (10000),
# BENCH_CONCURRENCY (16), BENCH_STARTUP_RUNS (10), BENCH_LIST_RUNS (5), BENCH_WATCHERS (100),
# BENCH_WATCH_EVENTS (200), BENCH_WATCH_GAP_MS (20), BENCH_SETTLE_SECS (3), BENCH_PODS (100),
# BENCH_POD_RUNS (20), BENCH_NODES (3), BENCH_NODE_RUNS (5), BENCH_ROTATION_RUNS (20), BENCH_ETCD=off (skip the etcd
# columns), BENCH_TIMEOUT (seconds the measuring may take, 900), BENCH_OUT (also save the
# tables to this file); the services phase's BENCH_SVC_* knobs are in bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}

"$CARGO" build --release --bin podway
"$CARGO" build --release -p podway-bench

tmp=$(mktemp -d "${TMPDIR:-/tmp}/podway-bench.XXXXXX")
etcd_pid=""
bench_pid=""

stop_pid() { # stop_pid PID: TERM, then KILL if it has not gone within 5 s
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$bench_pid" ]; then stop_pid "$bench_pid"; fi
  # A node cluster is never just killed: its pods outlive it and its namespaces stay. `podway
  # down` stops what runs and removes what a dead one left (it finds it by cluster.json).
  for f in "$tmp"/work/*/data/cluster.json; do
    [ -f "$f" ] || continue
    # Twice: if `podway up` died while stopping (its stdout pipe went with podway-bench), the
    # second run finds no process and removes the network it left.
    target/release/podway down --data-dir "$(dirname "$f")" >&2 || true
    target/release/podway down --data-dir "$(dirname "$f")" >/dev/null 2>&1 || true
  done
  # A podway-bench that was killed leaves its podways running; each one's pid file says which.
  for f in "$tmp"/work/*/data/podway.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if grep -qa podway "/proc/$pid/cmdline" 2>/dev/null; then stop_pid "$pid"; fi
  done
  if [ -n "$etcd_pid" ]; then stop_pid "$etcd_pid"; fi
  # The CNI floor's scratch namespace, if podway-bench was killed (its holders are sleeps that end by themselves).
  for ns in $(ip netns list 2>/dev/null | awk '/^pwbench-cnifloor-/ {print $1}'); do ip netns del "$ns" || true; done
  # The services and ingress phases' namespaces, and what runs inside them (HAProxy, nginx).
  for ns in $(ip netns list 2>/dev/null | awk '/^pwbench-svc-/ {print $1}'); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do stop_pid "$pid"; done
    ip netns del "$ns" || true
  done
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { # a loopback port nothing listens on (etcd needs fixed ports)
  for _ in $(seq 50); do
    local p=$((20000 + RANDOM % 20000))
    if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then echo "$p"; return; fi
  done
  echo "no free port found" >&2
  return 1
}

etcd_args=()
# etcd serves the control-plane phase only.
export BENCH_PHASES=${BENCH_PHASES:-control-plane,nodes,services,rotation,ingress}
case ",$BENCH_PHASES," in
  *,control-plane,*) ;;
  *) BENCH_ETCD=off ;;
esac
if [ "${BENCH_ETCD:-on}" != off ]; then
  if ! command -v etcd >/dev/null; then
    echo "etcd is not installed (scripts/install-deps.sh test installs it); set BENCH_ETCD=off to skip it" >&2
    exit 1
  fi
  client_port=$(free_port)
  peer_port=$(free_port)
  etcd --name podway-bench --data-dir "$tmp/etcd" \
    --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "podway-bench=http://127.0.0.1:$peer_port" \
    --logger zap --log-level error >"$tmp/etcd.log" 2>&1 &
  etcd_pid=$!
  for i in $(seq 100); do
    if ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$client_port" --command-timeout 1s endpoint health >/dev/null 2>&1; then break; fi
    if ! kill -0 "$etcd_pid" 2>/dev/null || [ "$i" = 100 ]; then
      echo "etcd did not become healthy; its log:" >&2
      cat "$tmp/etcd.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  etcd_args=(--etcd "127.0.0.1:$client_port")
fi

echo "podway-bench: data in $tmp ($(df -T "$tmp" | awk 'NR==2 {print $2}')), etcd ${etcd_args[1]:-off}" >&2
timeout --signal TERM "${BENCH_TIMEOUT:-900}" target/release/podway-bench \
  --podway target/release/podway --work-dir "$tmp/work" "${etcd_args[@]}" >"$tmp/table.md" &
bench_pid=$!
wait "$bench_pid"
bench_pid=""
cat "$tmp/table.md"
if [ -n "${BENCH_OUT:-}" ]; then cp "$tmp/table.md" "$BENCH_OUT"; fi
