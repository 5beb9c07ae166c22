#!/usr/bin/env bash
# `netpool redis-bench` as a user meets it.
#
#   tests/cli/redis_cli.sh options NETPOOL   option mistakes exit 2 and name the option; an
#                                            unreachable server exits 1 with its cause
#   tests/cli/redis_cli.sh server NETPOOL    against a redis-server the command starts itself
#                                            (no --port) and one started here (--port): the
#                                            table, and --json parsed by python3 with both runs
#                                            complete and the pooled/per-command ratio
#   tests/cli/redis_cli.sh metrics NETPOOL   --metrics-port 0 during a pooled run: /metrics
#                                            fetched with curl while it runs, checked by
#                                            `promtool check metrics`; 404, 405; nothing
#                                            listens once the command has ended
# Exit 0 passed, 1 failed, 77 skipped (meson's convention: no redis-server, curl or promtool,
# unless CI is set).
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
  # --metrics-port: its value, the address that needs it, and a port that is taken (exit 2
  # naming the option, before anything else is tried).
  expect 2 "--metrics-port expects a port number (0-65535; 0: a free one), got '70000'" --metrics-port 70000
  expect 2 "--metrics-address expects an IP address (e.g. 127.0.0.1 or ::1), got 'localhost'" \
    --metrics-port 0 --metrics-address localhost
  expect 2 "--metrics-address needs --metrics-port" --metrics-address 127.0.0.1
  /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(60)
' >"$tmp/held" &
  holder=$!
  extra_cleanup() { kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; }
  for _ in $(seq 100); do [[ -s $tmp/held ]] && break; sleep 0.05; done
  held=$(cat "$tmp/held")
  expect 2 "--metrics-port $held: cannot listen on 127.0.0.1:$held: Address already in use" \
    --metrics-port "$held" --port 1 --requests 1
  expect_json_error 2 options --metrics-port "$held" --port 1 --requests 1
  exit $failed
fi

redis=/usr/bin/redis-server
if [[ $mode == metrics ]]; then
  # curl fetches, promtool checks: both are test tools (scripts/setup: curl; scripts/test:
  # prometheus, which brings promtool).
  for tool in curl promtool; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      if [[ -n ${CI:-} ]]; then
        echo "FAIL: $tool not found and CI is set (scripts/setup installs curl, scripts/test prometheus)"
        exit 1
      fi
      echo "SKIP: $tool not found (Debian packages curl, prometheus)"
      exit 77
    fi
  done
fi
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

if [[ $mode == metrics ]]; then
  # A pooled run long enough to be scraped (a few seconds; it ends on its own), with the
  # JSON result on stdout and the endpoint's URL on stderr.
  "$netpool" redis-bench --mode pooled --requests 200000 --concurrency 4 --metrics-port 0 --json \
    >"$tmp/run.json" 2>"$tmp/run.err" &
  run_pid=$!
  extra_cleanup() { kill "$run_pid" 2>/dev/null; wait "$run_pid" 2>/dev/null; }
  url=
  for _ in $(seq 100); do
    url=$(sed -n 's/^metrics: \(http:.*\)$/\1/p' "$tmp/run.err")
    [[ -n $url ]] && break
    sleep 0.05
  done
  [[ $url == http://127.0.0.1:*/metrics ]] || { fail "no 'metrics: http://127.0.0.1:PORT/metrics' on stderr: $(cat "$tmp/run.err")"; exit 1; }
  echo "metrics endpoint: $url"
  # Scraped until the pool shows: it exists once redis-server is up and the preflight done.
  body= scraped=0
  for _ in $(seq 200); do
    if body=$(curl -sS --max-time 5 -D "$tmp/headers" "$url" 2>"$tmp/curl.err"); then
      ((++scraped))
      [[ $body == *'netpool_pool_info{'* ]] && break
    fi
    kill -0 "$run_pid" 2>/dev/null || break
    sleep 0.05
  done
  printf '%s\n' "$body" >"$tmp/metrics.txt"
  if [[ $body != *'netpool_pool_info{'* ]]; then
    fail "no pool in the exposition after $scraped scrapes (curl: $(cat "$tmp/curl.err"); run: $(cat "$tmp/run.err")): $body"
  else
    kill -0 "$run_pid" 2>/dev/null || fail "the run had ended when the pool showed: not fetched during the run"
    headers=$(tr -d '\r' <"$tmp/headers")
    [[ $headers == "HTTP/1.1 200 OK"* ]] || fail "status: $headers"
    [[ $headers == *$'\n'"Content-Type: text/plain; version=0.0.4"* ]] || fail "Content-Type: $headers"
    [[ $body == *'netpool_connections{pool="127.0.0.1:'* ]] || fail "no netpool_connections of the pool: $body"
    [[ $body == *'netpool_checkouts_total{'* ]] || fail "no netpool_checkouts_total: $body"
    if report=$(promtool check metrics <"$tmp/metrics.txt" 2>&1); then
      echo "promtool check metrics: ok ($(grep -c '^netpool_' "$tmp/metrics.txt") samples)"
    else
      fail "promtool check metrics: $report"
    fi
    base=${url%/metrics}
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "$base/")
    [[ $code == 404 ]] || fail "GET / answered $code, expected 404"
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -X POST "$url")
    [[ $code == 405 ]] || fail "POST /metrics answered $code, expected 405"
  fi
  wait "$run_pid"
  rc=$?
  extra_cleanup() { :; }
  [[ $rc -eq 0 ]] || fail "redis-bench --metrics-port 0: exit $rc; $(cat "$tmp/run.err")"
  check_json "$tmp/run.json" pooled
  # Stopped with the command: nothing answers there any more.
  if curl -sS -o /dev/null --max-time 5 "$url" 2>/dev/null; then
    fail "$url still answers after the command ended"
  fi
  exit $failed
fi

echo "usage: $0 options|server|metrics NETPOOL" >&2
exit 2
