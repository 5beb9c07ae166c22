#!/usr/bin/env bash
# `netpool imap-fetch` and `netpool imap-bench` as a user meets them.
#
#   tests/cli/imap_cli.sh options NETPOOL        option mistakes exit 2 and name the option;
#                                                --password is refused; an unreachable server
#                                                gives its cause and exit 1
#   tests/cli/imap_cli.sh server NETPOOL SRCDIR  against Dovecot (tests/servers/dovecot_server.py,
#                                                INBOX and Archive seeded): imap-fetch plain,
#                                                STARTTLS and implicit TLS (verified against a
#                                                throwaway CA) prints the newest messages, --json,
#                                                --redact, a missing mailbox, a wrong password and
#                                                an unverifiable certificate exit 1 with the cause;
#                                                imap-bench reuse/new/both, plain and TLS, --json;
#                                                the password appears in no output, not even
#                                                base64-encoded
# Exit 0 passed, 1 failed, 77 skipped (meson's convention: no Dovecot, or not root).
set -u
mode=$1
netpool=$2
# The shared helpers: fail, $tmp (removed at exit with $server_pid), expect.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
extra_cleanup() { [[ -n ${bad_pid:-} ]] && kill "$bad_pid" 2>/dev/null; }
# lacks TEXT: the last output does not contain TEXT.
lacks() {
  if grep -qF -- "$1" "$tmp/last"; then fail "the output contains '$1': $(cat "$tmp/last")"; fi
}

secret='Pa55-w0rd-for-the-"imap"-cli-test'

# A build with -Dtls=disabled refuses every TLS mode with its own error; its checks below use
# a clear-text login instead, and the TLS checks against Dovecot are skipped (and said so).
tls_built=1
tls_probe=$("$netpool" imap-fetch --user alice --password-env HOME --tls implicit 2>&1)
if [[ $tls_probe == *"built without TLS"* ]]; then
  tls_built=0
fi

if [[ $mode == options ]]; then
  if ((tls_built)); then
    sec=(--tls implicit)
  else
    sec=(--allow-plaintext-login)
    for cmd in imap-fetch imap-bench; do
      expect 2 "netpool was built without TLS" $cmd --user alice --password-env HOME --tls implicit
      expect 2 "netpool was built without TLS" $cmd --user alice --password-env HOME --tls starttls
    done
  fi
  for cmd in imap-fetch imap-bench; do
    expect 2 "--password is refused" $cmd --user alice --password "$secret"
    expect 2 "--password is refused" $cmd --user alice "--password=$secret"
    expect 2 "--user is required" $cmd --password-env HOME
    expect 2 "--user needs a password" $cmd --user alice
    expect 2 "--password-env: the environment variable 'NETPOOL_TEST_UNSET_VAR'" $cmd --user alice \
      --password-env NETPOOL_TEST_UNSET_VAR
    expect 2 "--password-file: cannot read" $cmd --user alice --password-file "$tmp/none"
    expect 2 "--password-file and --password-env" $cmd --user alice --password-file /etc/hostname \
      --password-env HOME
    expect 2 "--tls none would send the password in clear text" $cmd --user alice --password-env HOME
    expect 2 "--tls expects none, starttls or implicit" $cmd --user alice --password-env HOME --tls ssl
    expect 2 "--ca-file needs --tls" $cmd --user alice --password-env HOME --ca-file /etc/hostname
    if ((tls_built)); then
      expect 2 "--ca-file: cannot read" $cmd --user alice --password-env HOME --tls implicit --ca-file "$tmp/none"
    fi
    expect 2 "--port expects a port number" $cmd --user alice --password-env HOME "${sec[@]}" --port 70000
    expect 2 "--top expects" $cmd --user alice --password-env HOME "${sec[@]}" --top 0
    expect 2 "--timeout" $cmd --user alice --password-env HOME "${sec[@]}" --timeout 0
    expect 2 "unknown option '--bogus'" $cmd --user alice --password-env HOME --bogus
    expect 2 "option '--mailbox' needs a value" $cmd --user alice --password-env HOME --mailbox
    expect 0 "--password-file FILE" $cmd --help
  done
  expect 2 "--mode expects reuse, new or both" imap-bench --user alice --password-env HOME "${sec[@]}" --mode fast
  expect 2 "--iterations expects a positive integer" imap-bench --user alice --password-env HOME "${sec[@]}" \
    --iterations 0
  expect 2 "--concurrency expects a positive integer" imap-bench --user alice --password-env HOME "${sec[@]}" \
    --concurrency many
  expect 2 "--warmup expects a non-negative integer" imap-bench --user alice --password-env HOME "${sec[@]}" \
    --warmup -1
  expect 2 "unknown option '--mode'" imap-fetch --user alice --password-env HOME "${sec[@]}" --mode new
  # Nothing listens on a port just released by the kernel.
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf '%s\n' "$secret" >"$tmp/pw"
  expect 1 "Connection refused" imap-bench --port "$port" --user alice --password-file "$tmp/pw" \
    --allow-plaintext-login --timeout 5
  expect 1 "cannot fetch from 127.0.0.1:$port" imap-fetch --port "$port" --user alice --password-file "$tmp/pw" \
    --allow-plaintext-login --timeout 3
  # With --json every exit is one JSON object on stdout: a bad option, the refused --password,
  # a server that cannot be used.
  for cmd in imap-fetch imap-bench; do
    expect_json_error 2 options $cmd --user alice --password-env HOME "${sec[@]}" --bogus
    expect_json_error 2 options $cmd --user alice --password "$secret"
  done
  expect_json_error 2 options imap-bench --user alice --password-env HOME "${sec[@]}" --mode fast
  expect_json_error 1 preflight imap-bench --port "$port" --user alice --password-file "$tmp/pw" \
    --allow-plaintext-login --timeout 5
  expect_json_error 1 checkout imap-fetch --port "$port" --user alice --password-file "$tmp/pw" \
    --allow-plaintext-login --timeout 3
  if grep -qF -- "$secret" "$tmp/all-output"; then fail "the password was printed"; fi
  [[ $failed -eq 0 ]] && echo "imap cli options: passed"
  exit $failed
fi

srcdir=$3

# Hostile servers (tests/servers/bad_imap_server.py, no root needed): a NO that echoes the
# login command must show no form of the password (stdout, stderr, --json); a NO with
# terminal escapes must reach the terminal escaped; a password file readable by others is
# warned about, one of mode 0600 is not.
bad_pid=
start_bad() {
  /usr/bin/python3 "$srcdir/tests/servers/bad_imap_server.py" --scenario "$1" --port 0 \
    --password-file "$tmp/pw" >"$tmp/bad.out" 2>"$tmp/bad.err" &
  bad_pid=$!
  bad_port=$(ready_port "$tmp/bad.out")
  [[ -n $bad_port ]] || fail "bad_imap_server $1 did not start: $(cat "$tmp/bad.err")"
}
stop_bad() {
  kill "$bad_pid" 2>/dev/null
  wait "$bad_pid" 2>/dev/null
  bad_pid=
}
printf '%s\n' "$secret" >"$tmp/pw"
chmod 600 "$tmp/pw"
: >"$tmp/all-output"
for scenario in login_echo login_echo_login; do
  start_bad $scenario
  bad=(--port "$bad_port" --user alice --password-file "$tmp/pw" --allow-plaintext-login --timeout 5)
  expect 1 "[redacted]" imap-fetch "${bad[@]}"
  expect 1 "[redacted]" imap-fetch "${bad[@]}" --json
  expect 1 "[redacted]" imap-bench "${bad[@]}" --iterations 2
  expect 1 "[redacted]" imap-bench "${bad[@]}" --iterations 2 --json
  # A refused login: one JSON object that says so (and, above, in no form the password).
  expect_json_error 1 "" imap-fetch "${bad[@]}"
  expect_json_error 1 preflight imap-bench "${bad[@]}" --iterations 2
  stop_bad
done
for form in "$secret" "${secret//\"/\\\"}" "$(printf '%s' "${secret//\"/\\\"}" | sed 's/[\\"]/\\&/g')" \
  "$(printf '%s' "$secret" | base64 -w0)" "$(printf '\0alice\0%s' "$secret" | base64 -w0)"; do
  if grep -qF -- "$form" "$tmp/all-output"; then fail "an echoing server: the output contains the form '$form'"; fi
done
start_bad login_escapes
bad=(--port "$bad_port" --user alice --password-file "$tmp/pw" --allow-plaintext-login --timeout 5)
for cmd in imap-fetch imap-bench; do
  expect 1 "refused" $cmd "${bad[@]}"
  if grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$tmp/last" || grep -qF $'\xc2\x9b' "$tmp/last"; then
    fail "$cmd: a control character from the server reached the terminal: $(cat -v "$tmp/last")"
  fi
  grep -qF '\x1b]0;pwned-title' "$tmp/last" || fail "$cmd: the escape is not shown escaped: $(cat -v "$tmp/last")"
done
# The password file's mode: 0644 is warned about (the file is still used), 0600 is not.
chmod 644 "$tmp/pw"
expect 1 "is readable by others (mode 0644)" imap-fetch "${bad[@]}"
expect 1 "is readable by others (mode 0644)" imap-bench "${bad[@]}"
chmod 640 "$tmp/pw"
expect 1 "is readable by its group (mode 0640)" imap-fetch "${bad[@]}"
chmod 600 "$tmp/pw"
expect 1 "refused" imap-fetch "${bad[@]}"
lacks "warning: --password-file"
stop_bad
# LOGINDISABLED (and no AUTH=PLAIN) in clear text: the hint says so (not "the password was
# refused"), and no login is tried.
/usr/bin/python3 "$srcdir/tests/servers/bad_imap_server.py" --scenario logindisabled --port 0 \
  --password-file "$tmp/pw" --stats "$tmp/ld.json" >"$tmp/bad.out" 2>"$tmp/bad.err" &
bad_pid=$!
bad_port=$(ready_port "$tmp/bad.out")
[[ -n $bad_port ]] || fail "bad_imap_server logindisabled did not start: $(cat "$tmp/bad.err")"
bad=(--port "$bad_port" --user alice --password-file "$tmp/pw" --allow-plaintext-login --timeout 5)
for cmd in imap-fetch imap-bench; do
  expect 1 "takes no login without TLS (LOGINDISABLED)" $cmd "${bad[@]}"
  lacks "refused the user name or password"
done
/usr/bin/python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))["login_attempts"]; sys.exit(n != 0)' "$tmp/ld.json" ||
  fail "LOGINDISABLED: the client tried to log in: $(cat "$tmp/ld.json")"
stop_bad
: >"$tmp/all-output"

script=$srcdir/tests/servers/dovecot_server.py
if [[ ! -f $script ]]; then
  echo "SKIP: $script is missing"
  exit 77
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: Dovecot needs root (its privilege separation)"
  exit 77
fi
if [[ ! -x /usr/sbin/dovecot ]]; then
  echo "SKIP: Dovecot is not installed (apt-get install dovecot-imapd)"
  exit 77
fi
if ! command -v openssl >/dev/null; then
  echo "SKIP: the openssl command is missing (for a throwaway certificate)"
  exit 77
fi

make_test_certs "imap cli test CA"
printf '%s\n' "$secret" >"$tmp/pw"
chmod 600 "$tmp/pw"
start_imap_server "$script" dovecot Dovecot

plain=(--port "$imap_port" --user alice --password-file "$tmp/pw" --allow-plaintext-login --timeout 10)
tls=(--tls implicit --port "$imaps_port" --ca-file "$tmp/ca.pem" --server-name localhost --user alice
  --password-file "$tmp/pw" --timeout 10)
starttls=(--tls starttls --port "$imap_port" --ca-file "$tmp/ca.pem" --server-name localhost --user alice
  --password-file "$tmp/pw" --timeout 10)
verified="TLS verified"
if ((!tls_built)); then
  # Without TLS in the build every TLS case below runs in clear text instead; the checks
  # that only TLS can pass (verification, a missing --ca-file) are skipped, and said so.
  echo "SKIP: TLS cases (netpool built with -Dtls=disabled): they run in clear text here"
  tls=("${plain[@]}")
  starttls=("${plain[@]}")
  verified="INBOX: 20 messages"
fi

# imap-fetch: the newest first, as many as asked.
expect 0 "INBOX: 20 messages" imap-fetch "${plain[@]}" --top 5
for n in 20 19 18 17 16; do
  grep -qF -- "$(subject "INBOX/$n.eml")" "$tmp/last" || fail "imap-fetch --top 5 lacks message $n"
done
lacks "$(subject INBOX/15.eml)"
[[ $(grep -n "INBOX message 20" "$tmp/last" | cut -d: -f1) -lt $(grep -n "INBOX message 16" "$tmp/last" | cut -d: -f1) ]] ||
  fail "imap-fetch: not newest first: $(cat "$tmp/last")"
expect 0 "$verified" imap-fetch "${tls[@]}" --top 3
grep -qF -- "$(subject INBOX/18.eml)" "$tmp/last" || fail "imap-fetch TLS lacks message 18"
expect 0 "$verified" imap-fetch "${starttls[@]}" --top 1 --headers
grep -qF -- "Message-ID: <inbox-20@netpool.test>" "$tmp/last" || fail "imap-fetch --headers lacks the header"
expect 0 '"exists":5' imap-fetch "${tls[@]}" --mailbox Archive --top 10 --json
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [m["uid"] for m in d["messages"]] == [5,4,3,2,1], d' \
  "$tmp/last" || fail "imap-fetch --json: not 5 messages newest first: $(cat "$tmp/last")"
expect 0 "[host]" imap-fetch "${plain[@]}" --top 2 --redact
lacks alice
lacks 127.0.0.1
expect 1 "Nope" imap-fetch "${tls[@]}" --mailbox Nope
# Both commands: the server's words and the hint, through one formatting path.
for cmd in imap-fetch imap-bench; do
  expect 1 "there is no mailbox 'Nope'" $cmd "${plain[@]}" --mailbox Nope
  grep -q "IMAP mailbox does not exist (A[0-9]* NO " "$tmp/last" || fail "$cmd --mailbox Nope: not the server's words: $(cat "$tmp/last")"
done
# A TLS mode that does not match the port's, either way: named at once, not after --timeout.
if ((tls_built)); then
  for cmd in imap-fetch imap-bench; do
    expect 1 "answered in clear text" $cmd --tls implicit --port "$imap_port" --ca-file "$tmp/ca.pem" \
      --server-name localhost --user alice --password-file "$tmp/pw" --timeout 30
    lacks "certificate"
    started=$(date +%s%N)
    expect 1 "use --tls implicit" $cmd --tls starttls --port "$imaps_port" --ca-file "$tmp/ca.pem" \
      --server-name localhost --user alice --password-file "$tmp/pw" --timeout 30
    took_ms=$((($(date +%s%N) - started) / 1000000))
    lacks "timed out waiting for a connection"
    # The greeting timeout (5 s), not --timeout (30 s).
    ((took_ms < 20000)) || fail "$cmd --tls starttls against an implicit-TLS port took $took_ms ms"
  done
fi
printf 'wrong-%s\n' "$secret" >"$tmp/badpw"
# Dovecot logs each refused password ("Password mismatch"): a command that met a refused
# login must have sent it exactly once (servers lock accounts after a few failures).
refused_logins() { grep -c 'Password mismatch' "$tmp/dovecot/dovecot.log" || true; }
one_login_attempt() {  # BEFORE WHAT: exactly one more refused login than BEFORE
  local want=$(($1 + 1)) n
  for _ in $(seq 40); do  # Dovecot's log process writes a moment later
    n=$(refused_logins)
    ((n >= want)) && break
    sleep 0.05
  done
  sleep 0.2  # room for a second attempt to show up, if there was one
  n=$(refused_logins)
  ((n == want)) || fail "$2: $((n - $1)) refused logins on the server, not 1"
}
if ((tls_built)); then
  expect 1 "give --ca-file" imap-fetch --tls implicit --port "$imaps_port" --server-name localhost --user alice \
    --password-file "$tmp/pw" --timeout 10
  before=$(refused_logins)
  expect 1 "cannot fetch from" imap-fetch --tls implicit --port "$imaps_port" --ca-file "$tmp/ca.pem" \
    --server-name localhost --user alice --password-file "$tmp/badpw" --timeout 10
  one_login_attempt "$before" "imap-fetch --tls implicit, wrong password"
fi
before=$(refused_logins)
expect 1 "cannot fetch from" imap-fetch --port "$imap_port" --allow-plaintext-login --user alice \
  --password-file "$tmp/badpw" --timeout 10
one_login_attempt "$before" "imap-fetch, wrong password"
# A server that speaks only TLS 1.0: the hint names the version floor, not the certificate.
if ((tls_built)); then
  tls1_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  openssl s_server -tls1 -cipher 'DEFAULT:@SECLEVEL=0' -cert "$tmp/server.pem" -key "$tmp/server.key" \
    -accept "$tls1_port" -quiet </dev/null >"$tmp/tls1.log" 2>&1 &
  tls1_pid=$!
  for _ in $(seq 50); do
    (echo >"/dev/tcp/127.0.0.1/$tls1_port") 2>/dev/null && break
    sleep 0.1
  done
  for cmd in imap-fetch imap-bench; do
    expect 1 "below 1.2" $cmd --tls implicit --port "$tls1_port" --ca-file "$tmp/ca.pem" --server-name localhost \
      --user alice --password-file "$tmp/pw" --timeout 5
    lacks "the certificate did not verify"
  done
  kill "$tls1_pid" 2>/dev/null
  wait "$tls1_pid" 2>/dev/null
fi
NETPOOL_TEST_PW=$secret expect 0 "INBOX: 20 messages" imap-fetch --port "$imap_port" --user alice \
  --password-env NETPOOL_TEST_PW --allow-plaintext-login --top 1

# imap-bench: the table, every mode, plain and TLS.
expect 0 "median(ms)" imap-bench "${plain[@]}" --mode reuse --top 5 --warmup 4 --iterations 30 --concurrency 4
grep -qE '^reuse +5 +4 +30 +30 ' "$tmp/last" || fail "imap-bench reuse: no row with 30 successes: $(cat "$tmp/last")"
expect 0 "median latency, new / reuse" imap-bench "${tls[@]}" --mode both --top 1 --warmup 2 --iterations 20 \
  --concurrency 2
grep -qE '^new +1 +2 +20 +20 ' "$tmp/last" || fail "imap-bench new: no row with 20 successes: $(cat "$tmp/last")"
expect 0 '"success":10' imap-bench "${starttls[@]}" --mode new --top 20 --warmup 0 --iterations 10 --json
# --mode reuse --warmup 0 starts measuring at once (it used to wait 10 s for a pool that the
# first measured fetch creates).
started=$(date +%s%N)
expect 0 '"success":5' imap-bench "${plain[@]}" --mode reuse --top 1 --warmup 0 --iterations 5 --json
took_ms=$((($(date +%s%N) - started) / 1000000))
((took_ms < 5000)) || fail "imap-bench --mode reuse --warmup 0 took $took_ms ms (a 10 s wait before measuring?)"
expect 0 "[host]" imap-bench "${tls[@]}" --top 2 --iterations 5 --redact
lacks alice
lacks 127.0.0.1
if ((tls_built)); then
  before=$(refused_logins)
  expect 1 "cannot use 127.0.0.1:$imaps_port" imap-bench --tls implicit --port "$imaps_port" --ca-file "$tmp/ca.pem" \
    --server-name localhost --user alice --password-file "$tmp/badpw" --timeout 10
  one_login_attempt "$before" "imap-bench --tls implicit, wrong password"
fi
for mode in new reuse; do
  before=$(refused_logins)
  expect 1 "cannot use 127.0.0.1:$imap_port" imap-bench --port "$imap_port" --allow-plaintext-login --user alice \
    --password-file "$tmp/badpw" --timeout 10 --mode "$mode" --concurrency 4
  one_login_attempt "$before" "imap-bench --mode $mode --concurrency 4, wrong password"
done

# A server that leaves Nagle on and writes a FETCH's responses and its tagged OK apart
# (bad_imap_server.py nagle; over STARTTLS, its TLS 1.3 session tickets too): each reply
# waited for the client's delayed ACK, 40 ms, until the client acknowledged at once
# (kit::session, netpool::ack_now). Against the same server without the split (normal),
# side by side in this run, the medians must stay close: 8x is far above noise (about 1x
# measured) and far below the stall (about 130x for plain reuse, 15x for STARTTLS new).
median_ms() {
  /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["runs"][0]["median_ms"])' "$tmp/last"
}
nagle_runs=("--mode reuse --top 3")
((tls_built)) && nagle_runs+=("--mode new --top 3 --tls starttls --ca-file $tmp/ca.pem --server-name localhost")
for run in "${nagle_runs[@]}"; do
  declare -A med=()
  for scenario in normal nagle; do
    /usr/bin/python3 "$srcdir/tests/servers/bad_imap_server.py" --scenario "$scenario" --port 0 \
      --password-file "$tmp/pw" --cert "$tmp/server.pem" --key "$tmp/server.key" >"$tmp/bad.out" 2>"$tmp/bad.err" &
    bad_pid=$!
    bad_port=$(ready_port "$tmp/bad.out")
    [[ -n $bad_port ]] || fail "bad_imap_server $scenario did not start: $(cat "$tmp/bad.err")"
    # shellcheck disable=SC2086 # $run is several words on purpose
    expect 0 '"success":20' imap-bench --port "$bad_port" --user alice --password-file "$tmp/pw" \
      --allow-plaintext-login --timeout 5 --warmup 3 --iterations 20 --json $run
    med[$scenario]=$(median_ms)
    stop_bad
  done
  /usr/bin/python3 -c 'import sys; sys.exit(0 if float(sys.argv[2]) < 8 * float(sys.argv[1]) else 1)' \
    "${med[normal]}" "${med[nagle]}" ||
    fail "imap-bench $run: median ${med[nagle]} ms against a server with Nagle on, ${med[normal]} ms without (a delayed-ACK stall)"
  echo "imap-bench $run: median ${med[nagle]} ms with Nagle on the server, ${med[normal]} ms without"
  unset med
done

for form in "$secret" "wrong-$secret" "$(printf '%s' "$secret" | base64 -w0)" \
  "$(printf '\0alice\0%s' "$secret" | base64 -w0)" "$(printf '\0alice\0wrong-%s' "$secret" | base64 -w0)" \
  "${secret//\"/\\\"}"; do
  if grep -qF -- "$form" "$tmp/all-output"; then fail "the output contains the password (or the form '$form')"; fi
done
if [[ $failed -eq 0 ]]; then
  if ((tls_built)); then
    echo "imap cli against Dovecot: passed (password in no output)"
  else
    echo "imap cli against Dovecot: passed in clear text; TLS cases skipped (built without TLS)"
  fi
fi
exit $failed
