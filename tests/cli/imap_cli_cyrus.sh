#!/usr/bin/env bash
# `netpool imap-fetch` and `netpool imap-bench` against a second real IMAP server, Cyrus.
#
#   tests/cli/imap_cli_cyrus.sh NETPOOL SRCDIR   against Cyrus IMAP (tests/servers/cyrus_server.py,
#                                                INBOX and Archive seeded as for Dovecot):
#                                                imap-fetch over STARTTLS and implicit TLS
#                                                (verified against a throwaway CA) prints the
#                                                newest messages first; imap-bench runs once, each
#                                                mode; a wrong password is exactly one refused login
#                                                at Cyrus ("badlogin:" in its log); the password
#                                                appears in no output
# Exit 0 passed, 1 failed, 77 skipped (meson's convention): not root, or Cyrus not fetched
# (scripts/cyrus-fetch) outside CI; with CI set a missing Cyrus fails.
set -u
netpool=$1
srcdir=$2
# The shared helpers: fail, $tmp (removed at exit with $server_pid), expect.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
lacks() {
  if grep -qF -- "$1" "$tmp/last"; then fail "the output contains '$1': $(cat "$tmp/last")"; fi
}

secret='Pa55-w0rd-for-the-"imap"-cli-cyrus-test'
script=$srcdir/tests/servers/cyrus_server.py
imapd=${NETPOOL_CYRUS_IMAPD:-/var/cache/netpool/cyrus-imapd/root/usr/lib/cyrus/bin/imapd}

tls_probe=$("$netpool" imap-fetch --user alice --password-env HOME --tls implicit 2>&1)
if [[ $tls_probe == *"built without TLS"* ]]; then
  echo "SKIP: netpool built with -Dtls=disabled (these checks are about TLS to Cyrus)"
  exit 77
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: Cyrus needs root (its master switches to the cyrus user)"
  exit 77
fi
if [[ ! -x $imapd || ! -x /usr/lib/cyrus/bin/master ]]; then
  msg="Cyrus is not there ($imapd, /usr/lib/cyrus/bin/master): run scripts/cyrus-fetch"
  if [[ -n ${CI:-} ]]; then
    echo "FAIL: $msg"
    exit 1
  fi
  echo "SKIP: $msg"
  exit 77
fi

make_test_certs "imap cli cyrus test CA"
printf '%s\n' "$secret" >"$tmp/pw"
chmod 600 "$tmp/pw"
start_imap_server "$script" cyrus Cyrus

tls=(--tls implicit --port "$imaps_port" --ca-file "$tmp/ca.pem" --server-name localhost --user alice
  --password-file "$tmp/pw" --timeout 10)
starttls=(--tls starttls --port "$imap_port" --ca-file "$tmp/ca.pem" --server-name localhost --user alice
  --password-file "$tmp/pw" --timeout 10)

# imap-fetch: the newest first, as many as asked, the certificate verified.
for mode in starttls implicit; do
  if [[ $mode == starttls ]]; then args=("${starttls[@]}"); else args=("${tls[@]}"); fi
  expect 0 "TLS verified" imap-fetch "${args[@]}" --top 5
  grep -qF "INBOX: 20 messages" "$tmp/last" || fail "imap-fetch $mode: no 'INBOX: 20 messages': $(cat "$tmp/last")"
  for n in 20 19 18 17 16; do
    grep -qF -- "$(subject "INBOX/$n.eml")" "$tmp/last" || fail "imap-fetch $mode --top 5 lacks message $n"
  done
  lacks "$(subject INBOX/15.eml)"
  [[ $(grep -n "INBOX message 20" "$tmp/last" | cut -d: -f1) -lt $(grep -n "INBOX message 16" "$tmp/last" | cut -d: -f1) ]] ||
    fail "imap-fetch $mode: not newest first: $(cat "$tmp/last")"
done
expect 0 '"exists":5' imap-fetch "${starttls[@]}" --mailbox Archive --top 10 --json
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert [m["uid"] for m in d["messages"]] == [5,4,3,2,1], d' \
  "$tmp/last" || fail "imap-fetch --json: not 5 messages newest first: $(cat "$tmp/last")"
expect 1 "Nope" imap-fetch "${tls[@]}" --mailbox Nope

# A wrong password: Cyrus logs each refused login as "badlogin:"; a command that met one must
# have sent the password exactly once. Cyrus answers after failedloginpause (1 s here).
printf 'wrong-%s\n' "$secret" >"$tmp/badpw"
chmod 600 "$tmp/badpw"
if ! /usr/bin/python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["log_captured"] else 1)' \
  "$tmp/cyrus/server.json"; then
  fail "cyrus_server.py could not capture Cyrus's syslog (no mount namespace): refused logins cannot be counted"
fi
refused_logins() { grep -c 'badlogin:' "$tmp/cyrus/cyrus.log" || true; }
one_login_attempt() {  # BEFORE WHAT: exactly one more refused login than BEFORE
  local want=$(($1 + 1)) n
  for _ in $(seq 40); do
    n=$(refused_logins)
    ((n >= want)) && break
    sleep 0.05
  done
  sleep 1.5  # room for a second attempt to show up (after failedloginpause), if there was one
  n=$(refused_logins)
  ((n == want)) || fail "$2: $((n - $1)) refused logins on the server, not 1"
}
before=$(refused_logins)
expect 1 "cannot fetch from" imap-fetch --tls starttls --port "$imap_port" --ca-file "$tmp/ca.pem" \
  --server-name localhost --user alice --password-file "$tmp/badpw" --timeout 10
one_login_attempt "$before" "imap-fetch --tls starttls, wrong password"
before=$(refused_logins)
expect 1 "cannot use 127.0.0.1:$imaps_port" imap-bench --tls implicit --port "$imaps_port" --ca-file "$tmp/ca.pem" \
  --server-name localhost --user alice --password-file "$tmp/badpw" --timeout 10 --mode reuse --concurrency 4
one_login_attempt "$before" "imap-bench --tls implicit --mode reuse --concurrency 4, wrong password"

# imap-bench once: both modes over implicit TLS, the JSON over STARTTLS.
expect 0 "median latency, new / reuse" imap-bench "${tls[@]}" --mode both --top 5 --warmup 2 --iterations 20 \
  --concurrency 2
grep -qE '^new +5 +2 +20 +20 ' "$tmp/last" || fail "imap-bench new: no row with 20 successes: $(cat "$tmp/last")"
grep -qE '^reuse +5 +2 +20 +20 ' "$tmp/last" || fail "imap-bench reuse: no row with 20 successes: $(cat "$tmp/last")"
expect 0 '"success":10' imap-bench "${starttls[@]}" --mode reuse --top 20 --warmup 1 --iterations 10 --json

for form in "$secret" "wrong-$secret" "$(printf '%s' "$secret" | base64 -w0)" \
  "$(printf '\0alice\0%s' "$secret" | base64 -w0)" "$(printf '\0alice\0wrong-%s' "$secret" | base64 -w0)" \
  "${secret//\"/\\\"}"; do
  if grep -qF -- "$form" "$tmp/all-output"; then fail "the output contains the password (or the form '$form')"; fi
  if grep -qF -- "$form" "$tmp/cyrus/cyrus.log"; then fail "Cyrus's log contains the password (or the form '$form')"; fi
done
[[ $failed -eq 0 ]] && echo "imap cli against Cyrus: passed (password in no output)"
exit $failed
