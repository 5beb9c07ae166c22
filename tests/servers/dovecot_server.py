#!/usr/bin/python3
"""A private Dovecot IMAP server on loopback for netpool's tests and benchmarks.

    /usr/bin/python3 tests/servers/dovecot_server.py --dir DIR --cert CERT --key KEY
        --user USER --password-file F [--seed INBOX:20] [--seed Archive:5]
        [--max-connections 1000] [--auth-failure-delay SECS]

Needs root (Dovecot's privilege separation) and the Debian package dovecot-imapd
(dovecot-core comes with it). Nothing of the system's Dovecot is used or disturbed: the
configuration is DIR/dovecot.conf alone (not /etc/dovecot), base_dir, state_dir and the
logs are private, the listeners are on 127.0.0.1 ports that were free a moment ago:

  imap    plain IMAP; STARTTLS offered; LOGIN/AUTHENTICATE allowed before TLS
          (disable_plaintext_auth = no) so that plain-text tests can log in
  imaps   implicit TLS (the port 993 kind)

Both use CERT/KEY (PEM). The single user USER (password: the first line of F) is a
passwd-file user with the uid/gid of the system user "nobody" (else "dovenull") and the
home HOME/USER where HOME is DIR/home, or, when DIR cannot be reached by unprivileged
processes (a 0700 ancestor, as a mkdtemp directory has) or is too long for the unix
sockets in base_dir, a private 0711 directory under /tmp that DIR/runtime points to and
that is removed on exit. Mail is maildir:~/Maildir.

Seeding (--seed MAILBOX:N, repeatable): the mailbox is created and messages 1..N (1 oldest,
so UID n holds message n in a fresh mailbox) are saved with `doveadm save`. Each message is
deterministic (see seed_message()): it is written with CRLF line ends, and DIR/seed/MAILBOX/n.eml
holds exactly those bytes, which are what IMAP serves for BODY[] and what RFC822.SIZE
counts (Dovecot's maildir files store LF line ends and it converts back to CRLF when it
serves a message; the seed messages contain no bare CR or LF, so the round trip is exact).
DIR/server.json describes the instance: ports, config path, user, mailboxes and counts.

Prints "READY <imap_port> <imaps_port>" once both ports accept connections and the plain
port sends its "* OK" greeting. If Dovecot does not start, prints its output and log to
stderr and exits 1.

Signals: SIGTERM/SIGINT stop Dovecot (its master, which ends every session) and exit 0;
so does the parent's exit (a crashed test cannot send SIGTERM).
SIGUSR1 disconnects every session of USER (`doveadm kick`), so each client gets
"* BYE" mid-session; the same from a shell or a test:

    doveadm -c DIR/dovecot.conf kick USER

Other doveadm commands work the same way with -c DIR/dovecot.conf, e.g.
`doveadm -c DIR/dovecot.conf mailbox delete -u USER Archive` (then `mailbox create` gives the
mailbox a new UIDVALIDITY).
"""

import argparse
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

DOVECOT = shutil.which("dovecot", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm", path="/usr/bin:/usr/sbin:/bin:/sbin") or "/usr/bin/doveadm"
MAILBOX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def die(msg):
    print(f"dovecot_server: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_message(mailbox, n):
    """Message n of `mailbox`: fixed bytes, CRLF line ends, sizes from ~300 B to ~40 KB."""
    lines = [
        f"From: Sender {n} <sender{n}@netpool.test>",
        f"To: Netpool Test <user@netpool.test>",
        f"Subject: {mailbox} message {n}",
        f"Date: Mon, 02 Mar 2026 {(n // 60) % 24:02d}:{n % 60:02d}:00 +0000",
        f"Message-ID: <{mailbox.lower()}-{n}@netpool.test>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        f"This is message {n} of mailbox {mailbox}.",
        ".a line that starts with a dot",
        "UTF-8: gr\u00fc\u00dfe \u20ac \U0001F4E7",
        "(parentheses) \"quotes\" {braces} [brackets] * % \\ backslash",
    ]
    if n % 5 == 0:
        lines += [f"{k:04d} " + chr(ord("a") + (n + k) % 26) * 70 for k in range(n * 25)]
    if n % 3 == 0:
        lines.append("x" * 900)  # a long line, still under the 998 octets of RFC 5322
    lines.append(f"-- end of {mailbox} {n}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def parse_seed(spec):
    name, sep, count = spec.rpartition(":")
    if not sep or not count.isdigit() or not MAILBOX_RE.match(name):
        raise argparse.ArgumentTypeError(f"--seed wants MAILBOX:N with a simple mailbox name, not {spec!r}")
    return name, int(count)


def searchable_by_others(path):
    """True when every directory from / down to `path` can be traversed by any user."""
    path = os.path.abspath(path)
    while True:
        if not os.stat(path).st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def mail_user():
    for name in ("nobody", "dovenull"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    die("no system user 'nobody' or 'dovenull' to own the mail")


def write_config(args, dirs, ports, pw):
    dh = "/usr/share/dovecot/dh.pem"
    internal = "dovecot"
    try:
        pwd.getpwnam(internal)
    except KeyError:
        die("the system user 'dovecot' is missing: install dovecot-core (and dovecot-imapd)")
    conf = f"""# Written by tests/servers/dovecot_server.py: a private instance for tests.
protocols = imap
listen = 127.0.0.1
instance_name = netpool-test-{os.getpid()}
base_dir = {dirs['run']}
state_dir = {dirs['state']}
log_path = {dirs['log']}
info_log_path = {dirs['log']}
auth_verbose = yes
default_internal_user = {internal}
default_login_user = dovenull
first_valid_uid = 1
first_valid_gid = 1
ssl = yes
ssl_cert = <{os.path.abspath(args.cert)}
ssl_key = <{os.path.abspath(args.key)}
{"ssl_dh = <" + dh if os.path.exists(dh) else ""}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = {args.auth_failure_delay} secs
default_process_limit = {args.max_connections}
default_client_limit = {args.max_connections * 4}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dirs['users']}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {dirs['users']}
}}
protocol imap {{
  mail_max_userip_connections = {args.max_connections}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {ports[0]}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ports[1]}
    ssl = yes
  }}
}}
"""
    with open(dirs["conf"], "w", encoding="utf-8") as f:
        f.write(conf)
    # user:password:uid:gid:gecos:home:shell. The password is hex so no character breaks the line.
    with open(dirs["users"], "w", encoding="utf-8") as f:
        f.write(f"{args.user}:{{PLAIN.HEX}}{pw.encode('utf-8').hex()}:{dirs['uid']}:{dirs['gid']}::"
                f"{dirs['home']}::\n")
    os.chmod(dirs["users"], 0o644)


def doveadm(conf, *argv, stdin=None):
    r = subprocess.run([DOVEADM, "-c", conf, *argv], input=stdin, capture_output=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"doveadm {' '.join(argv)} exited {r.returncode}: "
                           f"{r.stderr.decode('utf-8', 'replace').strip()}")
    return r.stdout


def port_ready(port, want_greeting):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            if not want_greeting:
                return True
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(512)
                if not chunk:
                    return False
                data += chunk
            return data.startswith(b"* OK")
    except OSError:
        return False


def log_text(dirs, proc_out):
    parts = []
    for path in (proc_out, dirs["log"]):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                parts.append(f"--- {path}\n{f.read()}")
        except OSError:
            pass
    return "\n".join(parts)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--seed", action="append", type=parse_seed, default=[])
    p.add_argument("--max-connections", type=int, default=1000)
    p.add_argument("--auth-failure-delay", type=int, default=1,
                   help="seconds Dovecot waits before answering a failed login (its default is 2)")
    args = p.parse_args(argv)

    if os.geteuid() != 0:
        die("needs root (Dovecot's privilege separation)")
    if not os.path.exists(DOVECOT) or not os.path.exists(DOVEADM):
        die("dovecot/doveadm not found: install the Debian package dovecot-imapd")
    if not re.match(r"^[A-Za-z0-9._@+-]{1,64}$", args.user):
        die("--user: letters, digits and ._@+- only")
    with open(args.password_file, encoding="utf-8") as f:
        pw = f.readline().rstrip("\r\n")

    top = os.path.abspath(args.dir)
    os.makedirs(top, exist_ok=True)
    private = None
    # Unix socket paths are limited to 107 bytes: base_dir must stay short.
    if searchable_by_others(top) and len(os.path.join(top, "run")) <= 60:
        runtime = top
    else:
        private = tempfile.mkdtemp(prefix="netpool-dovecot-", dir="/tmp")
        os.chmod(private, 0o711)
        runtime = private
        link = os.path.join(top, "runtime")
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(private, link)
    user = mail_user()
    dirs = {
        "conf": os.path.join(top, "dovecot.conf"),
        "run": os.path.join(runtime, "run"),
        "state": os.path.join(runtime, "state"),
        "log": os.path.join(top, "dovecot.log"),
        "users": os.path.join(runtime, "users"),
        "home": os.path.join(runtime, "home", args.user),
        "uid": user.pw_uid,
        "gid": user.pw_gid,
    }
    for d in ("run", "state"):
        os.makedirs(dirs[d], exist_ok=True)
    os.makedirs(dirs["home"], exist_ok=True)
    os.chmod(os.path.dirname(dirs["home"]), 0o711)
    os.chown(dirs["home"], user.pw_uid, user.pw_gid)
    os.chmod(dirs["home"], 0o700)
    if runtime == top:
        os.chmod(top, os.stat(top).st_mode | 0o011)

    proc = None
    out_path = os.path.join(top, "dovecot.out")

    def cleanup():
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)

    stopping = False

    def on_stop(_sig, _frame):
        nonlocal stopping
        stopping = True

    def on_kick(_sig, _frame):
        try:
            doveadm(dirs["conf"], "kick", args.user)
        except Exception as e:  # noqa: BLE001 - reported, the server goes on
            print(f"dovecot_server: kick failed: {e}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, on_kick)

    try:
        ports = (0, 0)
        for attempt in range(5):
            ports = (free_port(), free_port())
            if ports[0] == ports[1]:
                continue
            write_config(args, dirs, ports, pw)
            with open(out_path, "wb") as out:
                proc = subprocess.Popen([DOVECOT, "-F", "-c", dirs["conf"]], stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + 20
            ok = False
            while time.monotonic() < deadline and not stopping:
                if proc.poll() is not None:
                    break
                if port_ready(ports[0], True) and port_ready(ports[1], False):
                    ok = True
                    break
                time.sleep(0.05)
            if ok or stopping:
                break
            text = log_text(dirs, out_path)
            cleanup_proc = proc
            proc = None
            if cleanup_proc.poll() is None:
                cleanup_proc.terminate()
                cleanup_proc.wait(timeout=10)
            if "Address already in use" in text and attempt < 4:
                continue  # a port was taken between free_port() and Dovecot's bind
            print(f"dovecot_server: Dovecot did not start\n{text}", file=sys.stderr, flush=True)
            cleanup()
            return 1
        if stopping:
            cleanup()
            return 0

        mailboxes = {}
        for name, count in args.seed:
            if name != "INBOX":
                doveadm(dirs["conf"], "mailbox", "create", "-u", args.user, name)
            seed_dir = os.path.join(top, "seed", name)
            os.makedirs(seed_dir, exist_ok=True)
            for n in range(1, count + 1):
                msg = seed_message(name, n)
                with open(os.path.join(seed_dir, f"{n}.eml"), "wb") as f:
                    f.write(msg)
                doveadm(dirs["conf"], "save", "-u", args.user, "-m", name, stdin=msg)
            mailboxes[name] = count

        info = {
            "imap_port": ports[0], "imaps_port": ports[1], "config": dirs["conf"], "user": args.user,
            "mailboxes": mailboxes, "seed_dir": os.path.join(top, "seed"), "log": dirs["log"],
            "dovecot_pid": proc.pid, "doveadm": DOVEADM,
        }
        with open(os.path.join(top, "server.json"), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=1)
        print(f"READY {ports[0]} {ports[1]}", flush=True)

        parent = os.getppid()
        while not stopping:
            if os.getppid() != parent:
                break  # the test that started us is gone (crashed): do not linger
            if proc.poll() is not None:
                print(f"dovecot_server: Dovecot exited ({proc.returncode})\n{log_text(dirs, out_path)}",
                      file=sys.stderr, flush=True)
                cleanup()
                return 1
            time.sleep(0.1)
    except Exception as e:  # noqa: BLE001 - any failure: say what, with the log, and stop Dovecot
        print(f"dovecot_server: {e}\n{log_text(dirs, out_path)}", file=sys.stderr, flush=True)
        cleanup()
        return 1
    cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
