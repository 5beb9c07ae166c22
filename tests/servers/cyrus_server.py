#!/usr/bin/python3
"""A private Cyrus IMAP server on loopback for netpool's tests and benchmarks.

    /usr/bin/python3 tests/servers/cyrus_server.py --dir DIR --cert CERT --key KEY
        --user USER --password-file F [--seed INBOX:20] [--seed Archive:5]
        [--max-connections 200] [--auth-failure-delay SECS] [--imapd PATH] [--no-plaintext]

The second real IMAP server of the tests, next to Dovecot (tests/servers/dovecot_server.py),
with the same command line, the same seed messages and the same READY line.

Needs root, the Debian packages cyrus-common and sasl2-bin, and Cyrus's imapd binary, which
comes from the cyrus-imapd package unpacked (not installed) by scripts/cyrus-fetch: Debian's
cyrus-imapd conflicts with dovecot-imapd (both provide imap-server), and installing it would
remove Dovecot. --imapd (default: $NETPOOL_CYRUS_IMAPD, else
/var/cache/netpool/cyrus-imapd/root/usr/lib/cyrus/bin/imapd) names that binary; the master
process (/usr/lib/cyrus/bin/master) and ctl_cyrusdb come from cyrus-common.

Nothing of the system's Cyrus is used or disturbed: imapd.conf and cyrus.conf are written to a
private directory (a 0711 directory under /tmp that DIR/runtime points to, removed on exit,
since the "cyrus" user the services run as must reach it), with their own configdirectory,
partition-default, sasldb and sockets. The listeners are on 127.0.0.1 ports that were free a
moment ago:

  imap    plain IMAP; STARTTLS offered; LOGIN allowed before TLS (allowplaintext: yes), as
          the Dovecot of the tests allows it; with --no-plaintext (allowplaintext: no)
          Cyrus advertises LOGINDISABLED and no AUTH= mechanism before STARTTLS, and refuses
          LOGIN there
  imaps   implicit TLS (the port 993 kind)

Both use CERT/KEY (PEM). The single user USER (password: the first line of F) lives in a
private sasldb (saslpasswd2, realm "netpool-cyrus", which is also the servername); an admin
user "cyrusadmin" (random password, in server.json) creates the mailboxes.

Logging: Cyrus logs only through syslog(3), to /dev/log. The master runs in a private mount
namespace (unshare -m) whose /dev is a small tmpfs holding the usual device nodes (bind
mounts of the real ones) and a "log" that points to a datagram socket of this script, which
writes every line to DIR/cyrus.log. So a failed login appears there as a "badlogin:" line,
once per failed attempt, and a test can count attempts on the server side. Where no mount
namespace can be made (no CAP_SYS_ADMIN), Cyrus runs without it, its log is lost, and
server.json says "log_captured": false, so that a test counting log lines can say why.

Seeding (--seed MAILBOX:N, repeatable): the mailbox is created by the admin and messages
1..N (1 oldest) are APPENDed by USER over IMAP, in order, so UID n holds message n in a fresh
mailbox. The messages are dovecot_server.seed_message() (imported, unchanged), CRLF line ends;
DIR/seed/MAILBOX/n.eml holds exactly those bytes, which Cyrus stores and serves as they are.
DIR/server.json describes the instance: ports, config paths, user, mailboxes and counts.

--auth-failure-delay sets Cyrus's failedloginpause (its default is 3 s; here 1 s, as for the
Dovecot of the tests). Cyrus's imapd never sets TCP_NODELAY on a client connection (strace
shows no such setsockopt, and imapd.conf(5) documents no option for it): Nagle's algorithm stays on,
which the "delayed-ACK stall" measurements in docs/imap-servers.md are about.

Prints "READY <imap_port> <imaps_port>" once both ports accept connections, the plain port
sends its "* OK" greeting and the seeding is done. If Cyrus does not start, prints its output
and log to stderr and exits 1.

Signals: SIGTERM/SIGINT stop Cyrus (SIGTERM to the master, which ends its children; what is
left of its process group is killed) and exit 0; so does the parent's exit (a crashed test
cannot send SIGTERM).
"""

import argparse
import imaplib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dovecot_server import free_port, parse_seed, port_ready, seed_message  # noqa: E402

MASTER = "/usr/lib/cyrus/bin/master"
CTL_CYRUSDB = "/usr/lib/cyrus/bin/ctl_cyrusdb"
SASLPASSWD2 = shutil.which("saslpasswd2", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/saslpasswd2"
UNSHARE = shutil.which("unshare", path="/usr/bin:/bin:/usr/sbin:/sbin") or "/usr/bin/unshare"
DEFAULT_IMAPD = "/var/cache/netpool/cyrus-imapd/root/usr/lib/cyrus/bin/imapd"
REALM = "netpool-cyrus"
ADMIN = "cyrusadmin"
# Device nodes Cyrus, OpenSSL and the SASL library may open; bound into the private /dev.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def die(msg):
    print(f"cyrus_server: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


class SyslogSink:
    """A datagram socket at `path` that writes every syslog message it gets to `log_path`."""

    def __init__(self, path, log_path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.settimeout(0.2)
        self.out = open(log_path, "ab", buffering=0)
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            # "<PRI>Mmm dd hh:mm:ss ident[pid]: text", no newline; keep it as it came.
            self.out.write(data.rstrip(b"\n") + b"\n")

    def close(self):
        self.stop = True
        self.thread.join(timeout=2)
        self.sock.close()
        self.out.close()


def namespace_works():
    try:
        r = subprocess.run([UNSHARE, "-m", "--propagation", "private", "true"], capture_output=True, timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def write_config(args, d, ports, cyrus):
    conf = f"""# Written by tests/servers/cyrus_server.py: a private instance for tests.
configdirectory: {d['config']}
partition-default: {d['spool']}
defaultpartition: default
servername: {REALM}
admins: {ADMIN}
cyrus_user: {cyrus.pw_name}
syslog_prefix: netpool-cyrus
allowplaintext: {"no" if args.no_plaintext else "yes"}
altnamespace: yes
unixhierarchysep: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {d['sasldb']}
sasl_mech_list: PLAIN LOGIN
tls_server_cert: {d['cert']}
tls_server_key: {d['key']}
failedloginpause: {args.auth_failure_delay}
lmtpsocket: {d['socket']}/lmtp
idlesocket: {d['socket']}/idle
notifysocket: {d['socket']}/notify
sievedir: {d['sieve']}
maxlogins_per_user: 0
maxlogins_per_host: 0
"""
    with open(d["imapd_conf"], "w", encoding="utf-8") as f:
        f.write(conf)
    cyrus_conf = f"""# Written by tests/servers/cyrus_server.py: a private instance for tests.
START {{
  recover cmd="{CTL_CYRUSDB} -C {d['imapd_conf']} -r"
}}
SERVICES {{
  imap  cmd="{args.imapd} -C {d['imapd_conf']}" listen="127.0.0.1:{ports[0]}" prefork=0 maxchild={args.max_connections}
  imaps cmd="{args.imapd} -s -C {d['imapd_conf']}" listen="127.0.0.1:{ports[1]}" prefork=0 maxchild={args.max_connections}
}}
EVENTS {{
}}
DAEMON {{
  idled cmd="{os.path.join(os.path.dirname(args.imapd), 'idled')} -C {d['imapd_conf']}"
}}
"""
    with open(d["cyrus_conf"], "w", encoding="utf-8") as f:
        f.write(cyrus_conf)
    for p in (d["imapd_conf"], d["cyrus_conf"]):
        os.chmod(p, 0o644)


def saslpasswd(d, name, pw, cyrus):
    r = subprocess.run([SASLPASSWD2, "-p", "-c", "-f", d["sasldb"], "-u", REALM, name],
                       input=pw.encode("utf-8"), capture_output=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"saslpasswd2 for {name} exited {r.returncode}: "
                           f"{r.stderr.decode('utf-8', 'replace').strip()}")
    os.chown(d["sasldb"], cyrus.pw_uid, cyrus.pw_gid)
    os.chmod(d["sasldb"], 0o600)


def master_command(d, captured):
    master = [MASTER, "-D", "-C", d["imapd_conf"], "-M", d["cyrus_conf"], "-p", d["pid"]]
    if not captured:
        return master
    # In the new mount namespace: a tmpfs becomes /dev, with the device nodes bound in and
    # "log" a symbolic link to this script's syslog socket. Only this namespace sees it.
    dev = d["devroot"]
    lines = [f"mount -t tmpfs -o mode=755,size=64k netpool-cyrus-dev {dev}"]
    for n in DEVICES:
        lines.append(f"if [ -e /dev/{n} ]; then : > {dev}/{n} && mount --bind /dev/{n} {dev}/{n}; fi")
    lines += [f"ln -s /proc/self/fd {dev}/fd", f"ln -s {d['syslog']} {dev}/log",
              f"mount --move {dev} /dev", 'exec "$@"']
    return [UNSHARE, "-m", "--propagation", "private", "/bin/sh", "-ec", "\n".join(lines), "cyrus-master", *master]


def imap_login(port, name, pw, starttls=False):
    c = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    if starttls:
        # Our own child on loopback, whose certificate's CA this script is not given: the
        # session is encrypted only because Cyrus refuses LOGIN in clear (--no-plaintext).
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.starttls(ssl_context=ctx)
    # A literal for the password: it may hold quotes, backslashes and 8-bit bytes.
    c.literal = pw.encode("utf-8")
    typ, data = c._simple_command("LOGIN", c._quote(name))
    if typ != "OK":
        raise RuntimeError(f"LOGIN {name} failed: {data}")
    c.state = "AUTH"
    return c


def check(result, what):
    typ, data = result
    if typ != "OK":
        raise RuntimeError(f"{what}: {typ} {data}")
    return data


def seed(args, d, top, pw, admin_pw, ports):
    mailboxes = {}
    admin = imap_login(ports[0], ADMIN, admin_pw, args.no_plaintext)
    try:
        check(admin.create(f"user/{args.user}"), f"CREATE user/{args.user}")
        for name, _count in args.seed:
            if name != "INBOX":
                check(admin.create(f"user/{args.user}/{name}"), f"CREATE user/{args.user}/{name}")
    finally:
        admin.logout()
    c = imap_login(ports[0], args.user, pw, args.no_plaintext)
    try:
        for name, count in args.seed:
            seed_dir = os.path.join(top, "seed", name)
            os.makedirs(seed_dir, exist_ok=True)
            for n in range(1, count + 1):
                msg = seed_message(name, n)
                with open(os.path.join(seed_dir, f"{n}.eml"), "wb") as f:
                    f.write(msg)
                check(c.append(name, None, None, msg), f"APPEND {name} {n}")
            # What Cyrus serves must be what was written: check message 1 and N.
            check(c.select(name, readonly=True), f"EXAMINE {name}")
            for n in sorted({1, count}):
                if n < 1:
                    continue
                data = check(c.uid("FETCH", str(n), "(BODY.PEEK[])"), f"UID FETCH {n} in {name}")
                if not data or not isinstance(data[0], tuple) or data[0][1] != seed_message(name, n):
                    raise RuntimeError(f"{name} UID {n}: Cyrus serves other bytes than were appended")
            mailboxes[name] = count
    finally:
        c.logout()
    return mailboxes


def log_text(paths):
    parts = []
    for path in paths:
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
    p.add_argument("--max-connections", type=int, default=200)
    p.add_argument("--auth-failure-delay", type=int, default=1,
                   help="seconds Cyrus pauses after a failed login (failedloginpause; its default is 3)")
    p.add_argument("--imapd", default=os.environ.get("NETPOOL_CYRUS_IMAPD") or DEFAULT_IMAPD)
    p.add_argument("--no-plaintext", action="store_true",
                   help="allowplaintext: no (LOGINDISABLED before STARTTLS; seeding then uses STARTTLS)")
    args = p.parse_args(argv)

    if os.geteuid() != 0:
        die("needs root (Cyrus's master switches to the cyrus user)")
    if not os.path.exists(MASTER) or not os.path.exists(CTL_CYRUSDB):
        die(f"{MASTER} not found: install the Debian package cyrus-common (scripts/cyrus-fetch does)")
    if not os.path.exists(SASLPASSWD2):
        die("saslpasswd2 not found: install the Debian package sasl2-bin (scripts/cyrus-fetch does)")
    args.imapd = os.path.abspath(args.imapd)
    if not os.access(args.imapd, os.X_OK):
        die(f"{args.imapd} not found: run scripts/cyrus-fetch (it unpacks cyrus-imapd without installing it)")
    if not re.match(r"^[A-Za-z0-9_-]{1,64}$", args.user) or args.user == ADMIN:
        die("--user: letters, digits, _ and - only (no dots: Cyrus's unixhierarchysep), not " + ADMIN)
    try:
        cyrus = pwd.getpwnam("cyrus")
    except KeyError:
        die("the system user 'cyrus' is missing: install cyrus-common")
    with open(args.password_file, encoding="utf-8") as f:
        pw = f.readline().rstrip("\r\n")
    admin_pw = secrets.token_hex(12)

    top = os.path.abspath(args.dir)
    os.makedirs(top, exist_ok=True)
    private = tempfile.mkdtemp(prefix="netpool-cyrus-", dir="/tmp")
    os.chmod(private, 0o711)
    link = os.path.join(top, "runtime")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(private, link)
    d = {
        "imapd_conf": os.path.join(private, "imapd.conf"),
        "cyrus_conf": os.path.join(private, "cyrus.conf"),
        "config": os.path.join(private, "config"),
        "spool": os.path.join(private, "spool"),
        "socket": os.path.join(private, "socket"),
        "sieve": os.path.join(private, "sieve"),
        "sasldb": os.path.join(private, "config", "sasldb2"),
        "cert": os.path.join(private, "tls", "cert.pem"),
        "key": os.path.join(private, "tls", "key.pem"),
        "pid": os.path.join(private, "master.pid"),
        "devroot": os.path.join(private, "dev"),
        "syslog": os.path.join(private, "syslog.sock"),
        "log": os.path.join(top, "cyrus.log"),
    }
    # What Debian's cyrus-makedirs makes in a configdirectory, and the other directories.
    for k in ("config", "config/db", "config/socket", "config/proc", "config/log", "spool", "socket", "sieve"):
        path = os.path.join(private, k) if "/" in k else d[k]
        os.makedirs(path, mode=0o750)
        os.chown(path, cyrus.pw_uid, cyrus.pw_gid)
    os.makedirs(d["devroot"])
    os.makedirs(os.path.dirname(d["cert"]), mode=0o750)
    os.chown(os.path.dirname(d["cert"]), cyrus.pw_uid, cyrus.pw_gid)
    for src, dst in ((args.cert, d["cert"]), (args.key, d["key"])):
        shutil.copyfile(src, dst)
        os.chown(dst, cyrus.pw_uid, cyrus.pw_gid)
        os.chmod(dst, 0o600)

    captured = namespace_works()
    sink = None
    proc = None
    out_path = os.path.join(top, "cyrus.out")
    open(d["log"], "ab").close()

    def cleanup():
        nonlocal proc, sink
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            # The master's children are in its process group (its own session): none may stay.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc = None
        if sink is not None:
            sink.close()
            sink = None
        shutil.rmtree(private, ignore_errors=True)
        try:
            os.remove(link)
        except OSError:
            pass

    stopping = False

    def on_stop(_sig, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)

    try:
        if captured:
            sink = SyslogSink(d["syslog"], d["log"])
        saslpasswd(d, args.user, pw, cyrus)
        saslpasswd(d, ADMIN, admin_pw, cyrus)
        ports = (0, 0)
        for attempt in range(5):
            ports = (free_port(), free_port())
            if ports[0] == ports[1]:
                continue
            write_config(args, d, ports, cyrus)
            with open(out_path, "wb") as out:
                proc = subprocess.Popen(master_command(d, captured), stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            deadline = time.monotonic() + 30
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
            text = log_text([out_path, d["log"]])
            failed = proc
            proc = None
            if failed.poll() is None:
                failed.terminate()
                failed.wait(timeout=10)
            try:
                os.killpg(failed.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if "in use" in text and attempt < 4:
                continue  # a port was taken between free_port() and the master's bind
            print(f"cyrus_server: Cyrus did not start\n{text}", file=sys.stderr, flush=True)
            cleanup()
            return 1
        if stopping:
            cleanup()
            return 0

        mailboxes = seed(args, d, top, pw, admin_pw, ports)

        info = {
            "imap_port": ports[0], "imaps_port": ports[1], "config": d["imapd_conf"],
            "cyrus_conf": d["cyrus_conf"], "user": args.user, "admin": ADMIN, "admin_password": admin_pw,
            "mailboxes": mailboxes, "seed_dir": os.path.join(top, "seed"), "log": d["log"],
            "log_captured": captured, "master_pid": proc.pid, "imapd": args.imapd,
            "failedloginpause": args.auth_failure_delay, "allowplaintext": not args.no_plaintext,
        }
        with open(os.path.join(top, "server.json"), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=1)
        print(f"READY {ports[0]} {ports[1]}", flush=True)

        parent = os.getppid()
        while not stopping:
            if os.getppid() != parent:
                break  # the test that started us is gone (crashed): do not linger
            if proc.poll() is not None:
                print(f"cyrus_server: Cyrus's master exited ({proc.returncode})\n"
                      f"{log_text([out_path, d['log']])}", file=sys.stderr, flush=True)
                cleanup()
                return 1
            time.sleep(0.1)
    except Exception as e:  # noqa: BLE001 - any failure: say what, with the log, and stop Cyrus
        print(f"cyrus_server: {e}\n{log_text([out_path, d['log']])}", file=sys.stderr, flush=True)
        cleanup()
        return 1
    cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
