#!/usr/bin/env bash
# `netpool smtp-send` as a user meets it.
#
#   tests/cli/smtp_send.sh options NETPOOL        option mistakes exit 2 and name the option;
#                                                 --password is refused; an unreachable server
#                                                 gives its cause and exit 1
#   tests/cli/smtp_send.sh server NETPOOL SRCDIR  against aiosmtpd (tests/servers/smtp_server.py,
#                                                 plain, AUTH allowed in clear for the test):
#                                                 pooled, --no-pool and --json send every message
#                                                 (the server's record counts them), a wrong
#                                                 password fails with exit 1, and the password
#                                                 appears in no output, not even base64-encoded
# Exit 0 passed, 1 failed, 77 skipped (meson's convention: aiosmtpd not installed).
set -u
mode=$1
netpool=$2
cli_command=smtp-send
# The shared helpers: fail, $tmp (removed at exit with $server_pid), expect.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

secret='Pa55-w0rd-for-the-smtp-send-test'

if [[ $mode == options ]]; then
  expect 2 "--password is refused" --to a@localhost --password "$secret"
  expect 2 "--password is refused" --to a@localhost "--password=$secret"
  expect 2 "--to is required" --port 2525
  expect 2 "--count" --to a@localhost --count 0
  expect 2 "--concurrency" --to a@localhost --concurrency many
  expect 2 "unknown option '--bogus'" --to a@localhost --bogus
  expect 2 "--tls expects none, starttls or implicit" --to a@localhost --tls ssl
  expect 2 "--no-pool and --pool-size" --to a@localhost --no-pool --pool-size 3
  expect 2 "--no-pool and --retries" --to a@localhost --no-pool --retries 1
  expect 2 "--retries" --to a@localhost --retries many
  expect 2 "--user needs a password" --to a@localhost --user alice
  expect 2 "--password-env: the environment variable 'NETPOOL_TEST_UNSET_VAR'" --to a@localhost --user alice \
    --password-env NETPOOL_TEST_UNSET_VAR
  expect 2 "--password-file: cannot read" --to a@localhost --user alice --password-file "$tmp/none"
  expect 2 "--user with --tls none would send the password in clear text" --to a@localhost --user alice \
    --password-env HOME
  expect 2 "--ca-file needs --tls" --to a@localhost --ca-file /etc/hostname
  expect 2 "--timeout" --to a@localhost --timeout 0
  # Nothing listens on a port just released by the kernel.
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  expect 1 "Connection refused" --port "$port" --to a@localhost --timeout 5
  # With --json every exit is one JSON object on stdout: a bad option, the refused --password,
  # a server that cannot be used.
  expect_json_error 2 options --to a@localhost --bogus
  expect_json_error 2 options --to a@localhost --count 0
  expect_json_error 2 options --to a@localhost --password "$secret"
  expect_json_error 1 "preflight connect" --port "$port" --to a@localhost --timeout 5
  if grep -qF -- "$secret" "$tmp/all-output"; then fail "the password was printed"; fi
  [[ $failed -eq 0 ]] && echo "smtp-send options: passed"
  exit $failed
fi

srcdir=$3
if [[ ! -f $srcdir/tests/servers/smtp_server.py ]]; then
  echo "SKIP: $srcdir/tests/servers/smtp_server.py is missing"
  exit 77
fi
if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "SKIP: aiosmtpd is not installed for /usr/bin/python3 (apt-get install python3-aiosmtpd)"
  exit 77
fi
printf '%s\n' "$secret" >"$tmp/pw"
chmod 600 "$tmp/pw"
/usr/bin/python3 "$srcdir/tests/servers/smtp_server.py" --mode plain --host 127.0.0.1 --port 0 \
  --user alice --password-file "$tmp/pw" --record "$tmp/rec" >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
port=$(ready_port "$tmp/server.out")
if [[ -z $port ]]; then
  echo "FAIL: the aiosmtpd server did not start: $(cat "$tmp/server.err")"
  exit 1
fi
common=(--port "$port" --user alice --password-file "$tmp/pw" --allow-plaintext-auth --from s@localhost
  --to r1@localhost --to r2@localhost --size 2000 --timeout 10)
expect 0 "sent 30, failed 0" "${common[@]}" --count 30 --concurrency 5
expect 0 "sent 10, failed 0" "${common[@]}" --count 10 --concurrency 3 --no-pool
expect 0 '"sent":7,"failed":0,"unknown":0,"retried":0,"transactions":7' "${common[@]}" --count 7 --json
NETPOOL_TEST_PW=$secret expect 0 "sent 5, failed 0" --port "$port" --user alice --password-env NETPOOL_TEST_PW \
  --allow-plaintext-auth --to r@localhost --count 5
printf 'wrong-%s\n' "$secret" >"$tmp/badpw"
# The server's record has one {"success": false} per refused AUTH: a run that met a refused
# login must have sent it exactly once, pooled or not, whatever the concurrency.
refused_auths() { grep -c '"success": false' "$tmp/rec/auth.jsonl" 2>/dev/null || true; }
for load in "--count 5" "--count 20 --concurrency 5" "--count 5 --no-pool" "--count 20 --concurrency 5 --no-pool"; do
  before=$(refused_auths)
  # shellcheck disable=SC2086 # $load is several words on purpose
  expect 1 "cannot use 127.0.0.1:$port" --port "$port" --user alice --password-file "$tmp/badpw" \
    --allow-plaintext-auth --to r@localhost --timeout 2 $load
  n=$(refused_auths)
  ((n == before + 1)) || fail "smtp-send $load, wrong password: $((n - before)) refused AUTHs on the server, not 1"
done
# A refused login and a failed STARTTLS (this server offers none) end the first session:
# with --json, one JSON object says where and why.
expect_json_error 1 "preflight handshake" --port "$port" --user alice --password-file "$tmp/badpw" \
  --allow-plaintext-auth --to r@localhost --count 5 --timeout 2
grep -qF 'refused' "$tmp/json-out" || fail "smtp-send --json, wrong password: no reason: $(cat "$tmp/json-out")"
# A build with -Dtls=disabled refuses every TLS mode with its own error (exit 2, where
# "options"): the TLS checks below expect that instead, and say so.
tls_probe=$("$netpool" smtp-send --to r@localhost --tls starttls --port 1 2>&1)
if [[ $tls_probe == *"built without TLS"* ]]; then
  echo "this netpool was built without TLS: the STARTTLS checks expect its refusal"
  expect_json_error 2 options --port "$port" --tls starttls --insecure-skip-verify --to r@localhost \
    --count 5 --timeout 2
  grep -qF 'built without TLS' "$tmp/json-out" || fail "smtp-send --json --tls starttls: $(cat "$tmp/json-out")"
else
  expect_json_error 1 "preflight handshake" --port "$port" --tls starttls --insecure-skip-verify --to r@localhost \
    --count 5 --timeout 2
  grep -qF 'does not offer STARTTLS' "$tmp/json-out" || fail "smtp-send --tls starttls: $(cat "$tmp/json-out")"
  # Implicit TLS against a clear-text port: the hint names the TLS mode, not the certificate.
  expect_json_error 1 "preflight connect" --port "$port" --tls implicit --to r@localhost --count 5 --timeout 2
  grep -qF 'answered in clear text' "$tmp/json-out" || fail "smtp-send --tls implicit, plain port: $(cat "$tmp/json-out")"
  # A STARTTLS injection (tests/servers/bad_smtp_server.py: "250 injected" behind the 220, in
  # the same write) fails the first session before anything is sent: with --json, one JSON
  # object says where (the issue that asked for this: smtp-send printed nothing on stdout).
  if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$tmp/inj.key" -out "$tmp/inj.pem" >/dev/null 2>&1; then
    /usr/bin/python3 "$srcdir/tests/servers/bad_smtp_server.py" --scenario starttls_injection --port 0 \
      --cert "$tmp/inj.pem" --key "$tmp/inj.key" >"$tmp/inj.out" 2>"$tmp/inj.err" &
    inj_pid=$!
    inj_port=$(ready_port "$tmp/inj.out")
    if [[ -n $inj_port ]]; then
      expect_json_error 1 "preflight handshake" --port "$inj_port" --tls starttls --ca-file "$tmp/inj.pem" \
        --server-name localhost --to r@localhost --count 3 --timeout 5
      # For this reason, not another (the certificate is valid for localhost).
      grep -qF 'possible injection' "$tmp/json-out" ||
        fail "smtp-send --json, STARTTLS injection: not reported as such: $(cat "$tmp/json-out")"
    else
      fail "bad_smtp_server starttls_injection did not start: $(cat "$tmp/inj.err")"
    fi
    kill "$inj_pid" 2>/dev/null
    wait "$inj_pid" 2>/dev/null
  fi
fi
# --metrics-port 0: the mailer's pool in Prometheus text, fetched during a longer run.
"$netpool" smtp-send "${common[@]}" --count 3000 --concurrency 4 --metrics-port 0 --json \
  >"$tmp/metrics-run.json" 2>"$tmp/metrics-run.err" &
metrics_pid=$!
scrape_during "$tmp/metrics-run.err" "$metrics_pid"
wait "$metrics_pid" || fail "smtp-send --metrics-port 0: exit $?; $(cat "$tmp/metrics-run.err")"
cat "$tmp/metrics-run.json" "$tmp/metrics-run.err" "$tmp/metrics.txt" >>"$tmp/all-output"
grep -qF '"sent":3000,"failed":0' "$tmp/metrics-run.json" || fail "smtp-send --metrics-port 0: $(cat "$tmp/metrics-run.json")"
delivered=$(wc -l <"$tmp/rec/index.jsonl" 2>/dev/null || echo 0)
delivered=$((delivered - 3000))
[[ $delivered -eq 52 ]] || fail "the server recorded $delivered messages, expected 52"
# Every message carries its own Message-ID, so a server (or this test) can tell a duplicate
# from the next message.
ids=$(cat "$tmp"/rec/*.eml | tr -d '\r' | grep -i '^Message-ID:' || true)
distinct=$(sort -u <<<"$ids" | grep -c . || true)
[[ $distinct -eq 3052 ]] || fail "the server recorded $distinct distinct Message-IDs for 3052 messages"

for form in "$secret" "wrong-$secret" "$(printf '%s' "$secret" | base64 -w0)" \
  "$(printf '\0alice\0%s' "$secret" | base64 -w0)" "$(printf '\0alice\0wrong-%s' "$secret" | base64 -w0)"; do
  if grep -qF -- "$form" "$tmp/all-output"; then fail "the output contains the password (or its base64 form '$form')"; fi
done
[[ $failed -eq 0 ]] && echo "smtp-send against aiosmtpd: passed ($delivered messages recorded; password in no output)"
exit $failed
