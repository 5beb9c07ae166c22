#!/usr/bin/env bash
# `netpool redis-bench` as a user meets it.
#
#   tests/cli/redis_cli.sh options NETPOOL   option mistakes exit 2 and name the option; an
#                                            unreachable server exits 1 with its cause
#   tests/cli/redis_cli.sh server NETPOOL    against a redis-server the command starts itself
#                                            (no --port) and one started here (--port): the
#                                            table, and --json parsed by python3 with both runs
#                                            complete and the pooled/per-command ratio
# Exit 0 passed, 1 failed, 77 skipped (meson's convention: no redis-server, unless CI is set).
set -u
mode=$1
netpool=$2
cli_command=redis-bench
# The shared helpers: fail, $tmp (removed at exit with $server_pid), expect.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ $mode == options ]]; then
  expect 0 "usage: netpool redis-bench" --help
  expect 2 "--mode expects pooled, per-command or both, got 'fast'" --mode fast
  expect 2 "--requests expects a positive integer, got '0'" --requests 0
  expect 2 "--requests expects a positive integer, got 'many'" --requests many
  expect 2 "--concurrency expects a positive integer, got '-3'" --concurrency -3
  expect 2 "--port expects a port number (1-65535), got '70000'" --port 70000
  expect 2 "--host needs --port" --host 127.0.0.1
  expect 2 "unknown option '--bogus'" --bogus
  expect 2 "option '--requests' needs a value" --requests
  expect 2 "option '--json' takes no value" --json=yes
  # Nothing listens on port 1 of loopback.
  expect 1 "cannot use 127.0.0.1:1: connect: Connection refused" --port 1 --requests 1
  # With --json every exit is one JSON object on stdout, a mistake or a failed preflight too.
  expect_json_error 2 options --requests 0
  expect_json_error 2 options --bogus
  expect_json_error 1 preflight --port 1 --requests 1
  exit $failed
fi

redis=/usr/bin/redis-server
if [[ ! -x $redis ]]; then
  if [[ -n ${CI:-} ]]; then
    echo "FAIL: $redis not found and CI is set (scripts/setup installs the package redis-server)"
    exit 1
  fi
  echo "SKIP: $redis not found (Debian package redis-server)"
  exit 77
fi

# check_json FILE MODES...: a JSON object with one complete, failure-free run per mode and,
# with two modes, a positive ratio.
check_json() {
  local file=$1
  shift
  /usr/bin/python3 - "$file" "$@" <<'PY' || fail "JSON output: $(cat "$1")"
import json, sys
doc = json.load(open(sys.argv[1]))
modes = sys.argv[2:]
runs = doc["runs"]
assert [r["mode"] for r in runs] == modes, runs
for r in runs:
    assert r["requests"] == doc["requests"] and r["success"] == r["requests"] and r["failures"] == 0, r
    assert r["rps"] > 0 and r["median_ms"] > 0, r
if len(modes) == 2:
    ratio = doc["rps_ratio_pooled_over_per_command"]
    assert ratio > 0, ratio
    print(f"pooled / per-command throughput: {ratio:.1f}x")
PY
}

if [[ $mode == server ]]; then
  # No --port: the command starts (and stops) its own redis-server.
  expect 0 "throughput, pooled / per-command:" --requests 300 --concurrency 4
  expect 0 "(a redis-server started for this run)" --requests 50 --mode pooled
  "$netpool" redis-bench --requests 500 --concurrency 8 --json >"$tmp/both.json" 2>"$tmp/err" ||
    fail "redis-bench --json: exit $?; $(cat "$tmp/err")"
  check_json "$tmp/both.json" per-command pooled

  # --port: a server that is already running.
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$redis" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --logfile '' \
    --dir "$tmp" >/dev/null 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    "$netpool" redis-bench --port "$port" --requests 1 --mode pooled >/dev/null 2>&1 && break
    sleep 0.05
  done
  "$netpool" redis-bench --port "$port" --host 127.0.0.1 --mode per-command --requests 200 --json >"$tmp/one.json" ||
    fail "redis-bench --port $port --json: exit $?"
  check_json "$tmp/one.json" per-command
  grep -q '"started_server":false' "$tmp/one.json" || fail "started_server should be false: $(cat "$tmp/one.json")"
  exit $failed
fi

echo "usage: $0 options|server NETPOOL" >&2
exit 2
