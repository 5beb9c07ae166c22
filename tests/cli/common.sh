# Sourced by the CLI test scripts (smtp_send.sh, imap_cli.sh, redis_cli.sh): failure
# bookkeeping, a scratch directory removed at exit with the server the script started, and
# expect(). Before sourcing: `netpool` (the binary); optionally `cli_command`, the netpool
# subcommand every expect() runs (empty: the first argument after PATTERN names it).
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}
tmp=$(mktemp -d)
server_pid=
# Scripts that start more than server_pid add their own to this hook.
extra_cleanup() { :; }
cleanup() {
  extra_cleanup
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# expect STATUS PATTERN ARGS...: runs `netpool [cli_command] ARGS...`, checks the exit status
# and that stdout+stderr contains PATTERN (a fixed string). The output is kept in $tmp/last
# and appended to $tmp/all-output (what a script greps for secrets at the end).
expect() {
  local want=$1 pattern=$2
  shift 2
  local out rc
  if [[ -n ${cli_command:-} ]]; then
    out=$("$netpool" "$cli_command" "$@" 2>&1)
  else
    out=$("$netpool" "$@" 2>&1)
  fi
  rc=$?
  printf '%s\n' "$out" >"$tmp/last"
  printf '%s\n' "$out" >>"$tmp/all-output"
  local what="${cli_command:+$cli_command }$*"
  [[ $rc -eq $want ]] || fail "$what: exit $rc, expected $want; output: $out"
  [[ $out == *"$pattern"* ]] || fail "$what: output lacks '$pattern': $out"
}

# expect_json_error STATUS WHERE ARGS...: runs `netpool [cli_command] ARGS... --json` and checks
# the exit status, and that stdout is exactly one JSON object (json.loads refuses anything
# after it) with "exit_status" STATUS and an "error" whose "where" starts with WHERE and whose
# "what" is not empty: with --json a script can tell what happened on every exit.
expect_json_error() {
  local want=$1 where=$2
  shift 2
  local rc
  if [[ -n ${cli_command:-} ]]; then
    "$netpool" "$cli_command" "$@" --json >"$tmp/json-out" 2>"$tmp/json-err"
  else
    "$netpool" "$@" --json >"$tmp/json-out" 2>"$tmp/json-err"
  fi
  rc=$?
  cat "$tmp/json-out" "$tmp/json-err" >>"$tmp/all-output"
  local what="${cli_command:+$cli_command }$* --json"
  [[ $rc -eq $want ]] || fail "$what: exit $rc, expected $want; stdout: $(cat "$tmp/json-out")"
  /usr/bin/python3 -c '
import json, sys
doc = json.loads(open(sys.argv[1]).read())
assert isinstance(doc, dict), "not an object"
assert doc.get("exit_status") == int(sys.argv[2]), "exit_status %r" % doc.get("exit_status")
err = doc.get("error") or {}
assert err.get("where", "").startswith(sys.argv[3]), "where %r" % err.get("where")
assert err.get("what"), "no what"
' "$tmp/json-out" "$want" "$where" 2>"$tmp/json-check" ||
    fail "$what: stdout is not one JSON error object ($(tail -1 "$tmp/json-check")): $(cat "$tmp/json-out")"
}

# ready_port OUT: waits (up to 10 s) for a test server's "READY PORT ..." line in the file
# OUT and prints PORT (nothing if it never came).
ready_port() {
  local _
  for _ in $(seq 100); do
    grep -q '^READY ' "$1" 2>/dev/null && break
    sleep 0.1
  done
  awk '/^READY /{print $2; exit}' "$1" 2>/dev/null
}

# scrape_during ERRFILE PID: waits for the "metrics: URL" line a command with --metrics-port 0
# writes to ERRFILE, then fetches URL until the exposition shows a pool (while PID runs) and
# leaves it in $tmp/metrics.txt; checks it with promtool. Fails (not skips) without curl or
# promtool when CI is set.
scrape_during() {
  local errfile=$1 pid=$2 url= body= _
  for tool in curl promtool; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      if [[ -n ${CI:-} ]]; then fail "$tool is not installed (scripts/setup installs it)"; else
        echo "SKIP: the metrics check needs $tool"; fi
      return 0
    fi
  done
  for _ in $(seq 100); do
    url=$(sed -n 's/^metrics: \(http:.*\)$/\1/p' "$errfile")
    [[ -n $url ]] && break
    sleep 0.05
  done
  [[ $url == http://127.0.0.1:*/metrics ]] || { fail "no 'metrics: URL' on stderr: $(cat "$errfile")"; return 0; }
  for _ in $(seq 200); do
    body=$(curl -sS --max-time 5 "$url" 2>/dev/null) && [[ $body == *'netpool_pool_info{'* ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  printf '%s\n' "$body" >"$tmp/metrics.txt"
  [[ $body == *'netpool_pool_info{'* ]] || { fail "no pool in the exposition at $url: $body"; return 0; }
  local report
  if report=$(promtool check metrics <"$tmp/metrics.txt" 2>&1); then
    echo "promtool check metrics: ok ($(grep -c '^netpool_' "$tmp/metrics.txt") samples, scraped during the run)"
  else
    fail "promtool check metrics: $report"
  fi
}

# make_test_certs CA_NAME: a throwaway CA ($tmp/ca.pem) and a server certificate for
# localhost / 127.0.0.1 ($tmp/server.pem, $tmp/server.key); exits 1 saying why if openssl fails.
make_test_certs() {
  (
    cd "$tmp" &&
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$1" \
        -keyout ca.key -out ca.pem &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=localhost' \
        -keyout server.key -out server.csr &&
      printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext &&
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext \
        -out server.pem
  ) >"$tmp/openssl.log" 2>&1 || {
    echo "FAIL: could not make a test certificate: $(cat "$tmp/openssl.log")"
    exit 1
  }
}

# start_imap_server SCRIPT NAME LABEL: runs an IMAP server script of tests/servers/ (same
# command line and READY line for Dovecot and Cyrus) in $tmp/NAME with the user alice, the
# password in $tmp/pw, INBOX:20 and Archive:5, and the certificate of make_test_certs. Sets
# server_pid, imap_port, imaps_port, seed (the seed files' directory) and subject(); exits 1
# with the server's error (LABEL names it) if it does not start.
start_imap_server() {
  /usr/bin/python3 "$1" --dir "$tmp/$2" --cert "$tmp/server.pem" --key "$tmp/server.key" \
    --user alice --password-file "$tmp/pw" --seed INBOX:20 --seed Archive:5 \
    >"$tmp/server.out" 2>"$tmp/server.err" &
  server_pid=$!
  for _ in $(seq 600); do
    grep -q '^READY ' "$tmp/server.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  read -r _ imap_port imaps_port < <(grep '^READY ' "$tmp/server.out")
  if [[ -z ${imaps_port:-} ]]; then
    echo "FAIL: $3 did not start: $(cat "$tmp/server.err")"
    exit 1
  fi
  seed=$tmp/$2/seed
}
# subject FILE: the Subject of a seed message (FILE under $seed, e.g. INBOX/20.eml).
subject() { grep -m1 '^Subject: ' "$seed/$1" | sed 's/^Subject: //' | tr -d '\r'; }
