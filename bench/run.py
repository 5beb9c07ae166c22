#!/usr/bin/python3
"""Runs netpool's benchmark suites and writes what they found to results/.

    bench/run.py --demo    the headline comparison, short sizes (about a minute on 2 cores),
                           then SMTP against Postfix's smtp-sink and aiosmtpd (about 15 s)
                           and IMAP against Dovecot, then Cyrus IMAP, reuse vs new connection
                           (about 10 s each),
                           and Redis INCR pooled vs a connection per command (a few seconds)
    bench/run.py --full    every size of docs/benchmarks.md (about 15 minutes on 2 cores)
    bench/run.py --gate    reduced sizes + thresholds; exit status 1 when one is violated

Options: --build DIR (where the bench_* executables are: DIR/bench; default build),
--out DIR (default results), --port-range "LOW HIGH" (ports suite; default "40000 40061"),
--no-ports, --no-smtp, --no-imap, --no-redis, --no-chart, --rounds N (repeat each scaling run N times, alternating the
order; ratios are medians over rounds), --only PREFIX (run only benchmarks whose name
starts with PREFIX; for quick checks).

Writes OUT/raw/<suite>.json (Google Benchmark's JSON, every run of the suite merged),
OUT/summary.json (fields documented in docs/benchmarks.md), OUT/scaling.png and
OUT/ports.png (python3-matplotlib; skipped with a note when it is not installed), and
prints a table. A progress line goes to stderr while it runs.

Standard library and matplotlib only; run it with Debian's /usr/bin/python3.
"""

import argparse
import datetime
import json
import os
import platform
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------------------------------
# Sizes per mode. Every size is an environment variable the suites read (see the header of
# each bench_*.cpp); docs/benchmarks.md lists them.

SCALING_FULL = {
    "NETPOOL_BENCH_MODES": "plain,tls",
    "NETPOOL_BENCH_CONCURRENCY": "50,100,200,500,1000,10000",
    "NETPOOL_BENCH_POOLS": "10+90,50+450,100+900",
    "NETPOOL_BENCH_KINDS": "baseline,pool,dedicated",
    "NETPOOL_BENCH_OPS_BASELINE_PLAIN": "20000",
    "NETPOOL_BENCH_OPS_BASELINE_TLS": "3000",
    "NETPOOL_BENCH_OPS_POOLED_PLAIN": "200000",
    "NETPOOL_BENCH_OPS_POOLED_TLS": "100000",
}
PORTS_FULL = {
    "NETPOOL_BENCH_PORTS_BASELINE_C": "50,100,200",
    "NETPOOL_BENCH_PORTS_POOLED_C": "100,1000,10000",
    "NETPOOL_BENCH_PORTS_POOL": "10+40",
    "NETPOOL_BENCH_PORTS_OPS_BASELINE": "1000",
    "NETPOOL_BENCH_PORTS_OPS_POOLED": "20000",
}

# The demo: the pool the report calls small (10+90) against a connection per request at
# 100 and 1,000, the large pool (100+900) at 10,000, plain and TLS, and the 62-port
# namespace. Selected benchmark by benchmark from the suites' full lists.
DEMO_SCALING_ENV = {
    "NETPOOL_BENCH_MODES": "plain,tls",
    "NETPOOL_BENCH_CONCURRENCY": "100,1000,10000",
    "NETPOOL_BENCH_POOLS": "10+90,100+900",
    "NETPOOL_BENCH_KINDS": "baseline,pool,dedicated",
    "NETPOOL_BENCH_OPS_BASELINE_PLAIN": "8000",
    "NETPOOL_BENCH_OPS_BASELINE_TLS": "1500",
    "NETPOOL_BENCH_OPS_POOLED_PLAIN": "60000",
    "NETPOOL_BENCH_OPS_POOLED_TLS": "40000",
}
DEMO_SCALING_SELECT = [
    r"scaling/(plain|tls)/(baseline|pool_10_90|dedicated_100)/c:(100|1000)$",
    r"scaling/(plain|tls)/baseline/c:10000$",
    r"scaling/(plain|tls)/pool_100_900/c:10000$",
]
PORTS_DEMO = dict(PORTS_FULL)

# The gate: c=1000 only, per round (GATE_ROUNDS rounds; the ratio is the median of the
# rounds' ratios).
GATE_SCALING_ENV = {
    "NETPOOL_BENCH_MODES": "plain,tls",
    "NETPOOL_BENCH_CONCURRENCY": "1000",
    "NETPOOL_BENCH_POOLS": "10+90",
    "NETPOOL_BENCH_KINDS": "baseline,pool",
    "NETPOOL_BENCH_OPS_BASELINE_PLAIN": "5000",
    "NETPOOL_BENCH_OPS_BASELINE_TLS": "1000",
    "NETPOOL_BENCH_OPS_POOLED_PLAIN": "40000",
    "NETPOOL_BENCH_OPS_POOLED_TLS": "20000",
}
GATE_ROUNDS = 5
# Rounds alternate the order of the runs (A B C, C B A, ...); every ratio is the median of
# the ratios of runs made next to each other.
DEMO_ROUNDS = 2
FULL_ROUNDS = 3
# SMTP (bench_smtp): netpool pooled and a new session per message against Postfix's
# smtp-sink, next to Postfix's smtp-source with and without -d, and pooled against a new
# session per message with STARTTLS + AUTH against aiosmtpd (docs/smtp.md#benchmarks).
SMTP_FULL = {
    "NETPOOL_BENCH_SMTP_TARGETS": "sink,starttls_auth",
    "NETPOOL_BENCH_SMTP_SESSIONS": "20",
    "NETPOOL_BENCH_SMTP_MESSAGES": "20000",
    "NETPOOL_BENCH_SMTP_MESSAGES_NO_POOL": "5000",
    "NETPOOL_BENCH_SMTP_PAYLOAD": "512",
    "NETPOOL_BENCH_SMTP_TLS_SESSIONS": "10",
    "NETPOOL_BENCH_SMTP_TLS_MESSAGES": "3000",
    "NETPOOL_BENCH_SMTP_TLS_MESSAGES_NO_POOL": "300",
    # The aiosmtpd server script, wherever --build is.
    "NETPOOL_BENCH_SMTP_SERVER": os.path.join(ROOT, "tests", "servers", "smtp_server.py"),
}
SMTP_DEMO = dict(SMTP_FULL, **{
    "NETPOOL_BENCH_SMTP_MESSAGES": "10000",
    "NETPOOL_BENCH_SMTP_MESSAGES_NO_POOL": "3000",
    "NETPOOL_BENCH_SMTP_TLS_MESSAGES": "2000",
    "NETPOOL_BENCH_SMTP_TLS_MESSAGES_NO_POOL": "200",
})
# The ratios summary.json["smtp"]["ratios"] holds, per target: (numerator, denominator).
SMTP_RATIOS = {
    "sink": (("pooled", "no_pool"), ("pooled", "smtp_source_d"), ("smtp_source", "smtp_source_d"),
             ("pooled_no_pipelining", "smtp_source_d"), ("no_pool", "smtp_source")),
    "starttls_auth": (("pooled", "no_pool"),),
}
# IMAP (bench_imap): fetch the newest N messages of INBOX with a reused session (imap::client
# through a pool) or a new connection per fetch (docs/imap.md#benchmarks), once against each
# server of IMAP_SERVERS (Dovecot, then Cyrus IMAP). The whole suite runs in one process per
# server and round (one server, seeded once); rounds alternate the order with
# NETPOOL_BENCH_IMAP_REVERSE.
IMAP_FULL = {
    "NETPOOL_BENCH_IMAP_MODES": "plain,tls",
    "NETPOOL_BENCH_IMAP_KINDS": "reuse,new",
    "NETPOOL_BENCH_IMAP_TOPS": "1,5,20",
    "NETPOOL_BENCH_IMAP_CONCURRENCY": "1,16",
    "NETPOOL_BENCH_IMAP_ITERATIONS": "400",
    "NETPOOL_BENCH_IMAP_ITERATIONS_NEW": "200",
    "NETPOOL_BENCH_IMAP_WARMUP": "20",
    "NETPOOL_BENCH_IMAP_SEED": "30",
}
# Per server: NETPOOL_BENCH_IMAP_SERVER_NAME and its wrapper script, wherever --build is.
# Cyrus's imapd is the one scripts/cyrus-fetch unpacks (NETPOOL_CYRUS_IMAPD overrides it,
# read by bench_imap from run.py's environment).
IMAP_SERVERS = ("dovecot", "cyrus")
IMAP_SERVER_TITLES = {"dovecot": "Dovecot", "cyrus": "Cyrus"}


def imap_server_env(server):
    return {"NETPOOL_BENCH_IMAP_SERVER_NAME": server,
            "NETPOOL_BENCH_IMAP_SERVER": os.path.join(ROOT, "tests", "servers", server + "_server.py")}



IMAP_DEMO = dict(IMAP_FULL, **{
    "NETPOOL_BENCH_IMAP_TOPS": "5",
    "NETPOOL_BENCH_IMAP_ITERATIONS": "200",
    "NETPOOL_BENCH_IMAP_ITERATIONS_NEW": "100",
})
IMAP_FULL_ROUNDS = 2
IMAP_DEMO_ROUNDS = 1
TARGET_IMAP_TLS_RATIO = 5.0  # median latency, new connection / reuse, TLS; against Dovecot only
GATE_LEAK_ENV = {"NETPOOL_BENCH_LEAK_CYCLES": "100000", "NETPOOL_BENCH_LEAK_FAULTS": "10000"}
FULL_LEAK_ENV = {}  # the suite's own defaults: 1,000,000 cycles, 100,000 faults
FULL_MEMORY_ENV = {}  # the suite's default: 1,000 idle connections

# Gate thresholds (the issue's) and the targets docs/benchmarks.md reports against.
GATE_RATIO = {"plain": 5.0, "tls": 20.0}
GATE_CONCURRENCY = 1000
GATE_POOL = "pool_10_90"
GATE_RSS_GROWTH = 1 << 20
TARGET_RATIO = {"plain": 10.0, "tls": 30.0}
TARGET_DEDICATED = 0.9
TARGET_CHECKOUT_NS = 50.0
TARGET_SMTP_VS_SMTP_SOURCE_D = 1.0  # netpool pooled / smtp-source -d, same sessions, smtp-sink
TARGET_SMTP_TLS_RATIO = 10.0        # pooled / new session per message, STARTTLS + AUTH, aiosmtpd

TASK_TIMEOUT_S = 900


# ---------------------------------------------------------------------------------------
# Progress


class Progress:
    """One line on stderr: '[3/24] scaling/tls/pool_10_90/c:1000 ... 2s'. On a terminal
    the line is rewritten every second while a benchmark runs; elsewhere each benchmark
    gets a line when it starts and one when it ends."""

    def __init__(self, total):
        self.total = total
        self.index = 0
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()
        self.current = ""
        self.started = 0.0

    def start(self, name):
        self.index += 1
        self.current = name
        self.started = time.monotonic()
        self._show("...", final=not self.tty)

    def tick(self):
        if self.tty:
            self._show("... %ds" % (time.monotonic() - self.started), final=False)

    def done(self, outcome):
        self._show("%.1fs  %s" % (time.monotonic() - self.started, outcome), final=True)

    def _show(self, tail, final):
        elapsed = time.monotonic() - self.t0
        line = "[%d/%d] %s %s  (total %d:%02d)" % (self.index, self.total, self.current, tail,
                                                    elapsed // 60, elapsed % 60)
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            sys.stderr.write("\r\033[K" + line[:width] + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


# ---------------------------------------------------------------------------------------
# Running suites


class Suite:
    def __init__(self, name, exe):
        self.name = name
        self.exe = exe
        self.status = "not-run"  # ok | missing | failed | skipped | not-run
        self.problems = []
        self.context = None
        self.benchmarks = []  # Google Benchmark entries, in run order
        self.env = {}
        self.planned = False  # this mode runs it (it may still be missing)


def short_name(full):
    """'scaling/plain/baseline/c:100/iterations:1/manual_time' -> 'scaling/plain/baseline/c:100'."""
    return re.sub(r"/(iterations|manual_time|real_time|repeats|threads|min_time)(:[^/]*)?(?=/|$).*$", "", full)


def list_benchmarks(suite, env):
    try:
        out = subprocess.run([suite.exe, "--benchmark_list_tests=true"], env=env, capture_output=True,
                             text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        suite.problems.append("cannot list its benchmarks: %s" % e)
        return None
    if out.returncode != 0:
        suite.problems.append("listing its benchmarks failed (exit %d): %s" % (out.returncode, out.stderr.strip()))
        return None
    names = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if line:
            names.append(short_name(line))
    note = out.stderr.strip()
    if note:
        suite.problems.append(note)
    return names


def run_task(suite, env, name_filter, progress, label, round_index=0):
    """Runs the suite's executable (all benchmarks, or those matching name_filter) and
    appends its JSON entries to suite.benchmarks. Returns the entries of this run."""
    progress.start(label)
    fd, out_path = tempfile.mkstemp(prefix="netpool-bench-", suffix=".json")
    os.close(fd)
    cmd = [suite.exe, "--benchmark_out=" + out_path, "--benchmark_out_format=json",
           "--benchmark_format=console"]
    if name_filter:
        cmd.append("--benchmark_filter=" + name_filter)
    log_lines = []
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as e:
        progress.done("could not start: %s" % e)
        suite.problems.append("%s: could not start: %s" % (label, e))
        os.unlink(out_path)
        return []
    # Read the output in a loop that wakes at least once a second, so the progress line ticks.
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + TASK_TIMEOUT_S
    timed_out = False
    while True:
        events = sel.select(timeout=1.0)
        for key, _ in events:
            line = key.fileobj.readline()
            if line:
                log_lines.append(line.rstrip("\n"))
            else:
                sel.unregister(key.fileobj)
        if not sel.get_map():
            break
        progress.tick()
        if time.monotonic() > deadline:
            proc.kill()
            timed_out = True
            break
    rc = proc.wait()
    entries = []
    try:
        with open(out_path, encoding="utf-8") as f:
            data = json.load(f)
        ctx = data.get("context") or {}
        suite.context = suite.context or ctx
        entries = data.get("benchmarks", [])
        if suite.name == "imap":
            # Which server this run measured, as bench_imap says it (its context); a
            # bench_imap without that field only ran against Dovecot.
            for e in entries:
                e["imap_server"] = ctx.get("imap_server", "dovecot")
    except (OSError, ValueError):
        pass
    os.unlink(out_path)
    for e in entries:
        e["short_name"] = short_name(e.get("name", ""))
        e["round"] = round_index
    suite.benchmarks.extend(entries)
    if timed_out:
        suite.problems.append("%s: killed after %d s" % (label, TASK_TIMEOUT_S))
    elif rc != 0:
        tail = "\n".join(log_lines[-15:])
        suite.problems.append("%s: exit status %d\n%s" % (label, rc, tail))
    elif not entries:
        suite.problems.append("%s: no benchmark result" % label)
    # Suite output worth keeping: the ports suite's reason for skipping, and so on.
    for line in log_lines:
        if line.startswith("bench_") and line not in suite.problems:
            suite.problems.append(line)
    progress.done(outcome_text(entries, rc, timed_out))
    return entries


def outcome_text(entries, rc, timed_out):
    if timed_out:
        return "TIMED OUT"
    if rc != 0 and not entries:
        return "FAILED (exit %d)" % rc
    parts = []
    for e in entries:
        if e.get("error_occurred"):
            parts.append("skipped: " + e.get("error_message", "?"))
        elif "ops_per_s" in e:
            parts.append("%s ops/s, %d failed" % (fmt_int(e["ops_per_s"]), e.get("failures", 0)))
        else:
            parts.append("ok")
    return "; ".join(parts) if len(parts) <= 2 else "%d results" % len(parts)


def fmt_int(v):
    return "{:,.0f}".format(v)


# ---------------------------------------------------------------------------------------
# Machine description


def machine():
    m = {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cpu_model": None,
        "memory_total_bytes": None,
        "hypervisor": None,
        "container": None,
        "virtualization": None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_at_start": list(os.getloadavg()),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    m["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    m["memory_total_bytes"] = int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((l for l in f if l.startswith("flags")), "")
        m["hypervisor"] = " hypervisor" in flags
    except OSError:
        pass
    if shutil.which("systemd-detect-virt"):
        try:
            v = subprocess.run(["systemd-detect-virt", "--container"], capture_output=True, text=True,
                               timeout=5).stdout.strip()
            m["container"] = v if v and v != "none" else None
        except (OSError, subprocess.TimeoutExpired):
            pass
    parts = []
    if m["hypervisor"]:
        parts.append("virtual machine")
    if m["container"]:
        parts.append("%s container" % m["container"])
    m["virtualization"] = ", ".join(parts) or None
    return m


# ---------------------------------------------------------------------------------------
# Summary


RUN_FIELDS = ("ops_per_s", "successes", "failures", "operations", "concurrency", "seconds", "p50_us", "p95_us",
              "p99_us", "peak_connected", "connections", "warm_connections", "connects_during_run",
              "checkout_wait_p99_us", "eaddrnotavail", "connections_opened", "ports", "port_low", "port_high",
              "sessions", "server_received", "message_bytes")


def run_record(e):
    """The summary's view of one Google Benchmark entry."""
    if e.get("error_occurred"):
        return {"status": "skipped", "reason": e.get("error_message", "")}
    r = {"status": "ok"}
    for k in RUN_FIELDS:
        if k in e:
            v = e[k]
            r[k] = int(v) if isinstance(v, float) and v.is_integer() and k not in ("seconds",) else v
    errors = {}
    for k, v in e.items():
        if k.startswith("err:"):
            errors[k[4:]] = {"count": int(v), "message": ""}
    # Messages come from the label: "<key> <message> x<count>; ..."
    for part in (e.get("label") or "").split("; "):
        m = re.match(r"^(\S+) (.*) x(\d+)$", part)
        if m and m.group(1) in errors:
            errors[m.group(1)]["message"] = m.group(2)
    r["errors"] = errors
    if e.get("label"):
        r["label"] = e["label"]
    return r


def ratio(a, b):
    if a is None or b is None or not b:
        return None
    return a / b


def ops(rec):
    return rec.get("ops_per_s") if rec and rec.get("status") == "ok" else None


def build_scaling(suite):
    """{mode: {concurrency: {kind: record, 'ratios': {...}}}}"""
    grouped = {}
    for e in suite.benchmarks:
        m = re.match(r"^scaling/(plain|tls)/([a-z0-9_]+)/c:(\d+)$", e["short_name"])
        if not m:
            continue
        mode, kind, c = m.group(1), m.group(2), m.group(3)
        grouped.setdefault(mode, {}).setdefault(c, {}).setdefault(kind, []).append(e)
    out = {}
    for mode, by_c in grouped.items():
        for c, kinds in by_c.items():
            runs = out.setdefault(mode, {}).setdefault(c, {})
            per_round = {}  # kind -> {round: ops_per_s}
            for kind, entries in kinds.items():
                recs = [run_record(e) for e in entries]
                per_round[kind] = {e.get("round", 0): r.get("ops_per_s") for e, r in zip(entries, recs)
                                   if r["status"] == "ok"}
                runs[kind] = merge_rounds(recs)
            ratios, ratio_rounds = {}, {}
            for kind in kinds:
                pm = re.match(r"^pool_(\d+)_(\d+)$", kind)
                if not pm:
                    continue
                cap = int(pm.group(1)) + int(pm.group(2))
                for other in ("baseline", "dedicated_%d" % cap):
                    if other not in per_round:
                        continue
                    # Rounds pair runs made next to each other in time: the ratio is the
                    # median of the per-round ratios (one round: simply the ratio).
                    rs = [ratio(per_round[kind][k], per_round[other][k])
                          for k in sorted(per_round[kind]) if k in per_round[other]]
                    rs = [r for r in rs if r is not None]
                    if rs:
                        ratios["%s/%s" % (kind, other)] = median(rs)
                        if len(rs) > 1:
                            ratio_rounds["%s/%s" % (kind, other)] = rs
            runs["ratios"] = ratios
            if ratio_rounds:
                runs["ratio_rounds"] = ratio_rounds
    return out


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2.0


def merge_rounds(recs):
    """One record for several rounds of the same benchmark: the round with the median
    throughput, with successes and failures (and errors) summed over every round."""
    if len(recs) == 1:
        return recs[0]
    ok = [r for r in recs if r["status"] == "ok"]
    if not ok:
        return recs[0]
    ok_sorted = sorted(ok, key=lambda r: r.get("ops_per_s", 0))
    med = dict(ok_sorted[(len(ok_sorted) - 1) // 2])
    med["rounds"] = len(recs)
    med["rounds_ok"] = len(ok)
    med["ops_per_s_rounds"] = [r.get("ops_per_s") for r in ok]
    for k in ("successes", "failures", "operations"):
        med[k] = sum(r.get(k, 0) for r in ok)
    errors = {}
    for r in ok:
        for key, e in r.get("errors", {}).items():
            agg = errors.setdefault(key, {"count": 0, "message": e["message"]})
            agg["count"] += e["count"]
    med["errors"] = errors
    skipped = [r.get("reason") for r in recs if r["status"] != "ok"]
    if skipped:
        med["status"] = "skipped"
        med["reason"] = "%d of %d rounds skipped: %s" % (len(skipped), len(recs), skipped[0])
    return med


def build_ports(suite, port_range):
    info = {"port_range": port_range, "available": None, "reason": None, "runs": {}}
    if suite is None:
        return info
    reasons = []
    for e in suite.benchmarks:
        name = e["short_name"][len("ports/"):]
        rec = run_record(e)
        info["runs"][name] = rec
        if rec["status"] == "skipped":
            reasons.append(rec["reason"])
        elif info["available"] is None:
            info["available"] = True
        if "ports" in e:
            info["ports"] = int(e["ports"])
        m = re.match(r"^netns by (.*?), ports", e.get("label") or "")
        if m:
            info["namespace_method"] = m.group(1)
    if reasons and not info["available"]:
        info["available"] = False
        info["reason"] = reasons[0]
    if not suite.benchmarks and suite.problems:
        info["available"] = False
        info["reason"] = suite.problems[0]
    return info


def build_smtp(suite):
    """{"runs": {target: {kind: record}}, "ratios": {target: {"a/b": median ratio}}, ...}:
    targets "sink" (Postfix's smtp-sink; kinds pooled, pooled_no_pipelining, no_pool,
    smtp_source_d, smtp_source) and "starttls_auth" (aiosmtpd; kinds pooled, no_pool). As in
    build_scaling, a ratio is the median of the ratios of runs made in the same round."""
    info = {"status": suite.status, "planned": suite.planned, "problems": suite.problems, "env": suite.env,
            "runs": {}, "ratios": {}}
    grouped = {}
    for e in suite.benchmarks:
        m = re.match(r"^smtp/([a-z_]+)/([a-z_]+)$", e["short_name"])
        if m:
            grouped.setdefault(m.group(1), {}).setdefault(m.group(2), []).append(e)
    for target, kinds in grouped.items():
        per_round = {}
        for kind, entries in kinds.items():
            recs = [run_record(e) for e in entries]
            per_round[kind] = {e.get("round", 0): r.get("ops_per_s") for e, r in zip(entries, recs)
                               if r["status"] == "ok"}
            merged = merge_rounds(recs)
            if len(recs) > 1 and "server_received" in merged:
                # Successes are summed over the rounds: so is the server's count, when
                # every round has one (-1: not counted).
                got = [r.get("server_received", -1) for r in recs if r["status"] == "ok"]
                merged["server_received"] = sum(got) if all(g >= 0 for g in got) else -1
            info["runs"].setdefault(target, {})[kind] = merged
        for a, b in SMTP_RATIOS.get(target, ()):
            if a not in per_round or b not in per_round:
                continue
            rs = [ratio(per_round[a][k], per_round[b][k]) for k in sorted(per_round[a]) if k in per_round[b]]
            rs = [r for r in rs if r is not None]
            if rs:
                info["ratios"].setdefault(target, {})["%s/%s" % (a, b)] = median(rs)
                if len(rs) > 1:
                    info.setdefault("ratio_rounds", {}).setdefault(target, {})["%s/%s" % (a, b)] = rs
    return info


def smtp_checks(smtp):
    """Pooled SMTP runs must not fail (informational checks, like the scaling ones)."""
    checks = []
    for target, runs in (smtp or {}).get("runs", {}).items():
        for kind, rec in runs.items():
            if not kind.startswith("pooled") or rec.get("status") != "ok":
                continue
            errs = ", ".join("%s %s x%d" % (k, v["message"], v["count"]) for k, v in rec.get("errors", {}).items())
            check(checks, "smtp %s: pooled failures" % target, rec.get("failures"), "==", 0, errs)
    return checks


def build_imap(suite):
    """{"servers": {server: {"status", "problems", "runs", "ratios", "table"}}, and for the
    layout of before Cyrus was measured, Dovecot's "runs", "ratios" and "table" at the top:
    see build_imap_server."""
    info = {"status": suite.status, "planned": suite.planned, "problems": suite.problems, "env": suite.env,
            "servers": {}, "runs": {}, "ratios": {}, "table": []}
    planned = getattr(suite, "imap_servers", [])
    seen = [e.get("imap_server", "dovecot") for e in suite.benchmarks]
    for server in list(planned) + [x for x in dict.fromkeys(seen) if x not in planned]:
        one = build_imap_server([e for e in suite.benchmarks if e.get("imap_server", "dovecot") == server], server)
        tag = "imap against %s" % server
        one["problems"] = [p for p in suite.problems if p.startswith(tag)]
        if not one["table"] and not one["problems"]:
            one["problems"] = list(suite.problems)  # e.g. bench_imap not built
        if server in IMAP_SERVERS:
            one["env"] = imap_server_env(server)
        if one["table"] and all(r.get("skipped") is not None for r in one["table"]):
            one["status"] = "skipped"
        elif one["table"]:
            one["status"] = "ok"
        else:
            one["status"] = "failed" if one["problems"] or suite.status in ("ok", "failed") else suite.status
        info["servers"][server] = one
    dov = info["servers"].get("dovecot")
    if dov:
        for k in ("runs", "ratios", "ratio_rounds", "table"):
            if k in dov:
                info[k] = dov[k]
    return info


def build_imap_server(benchmarks, server):
    """One server's figures: {"runs": {mode: {"top:N/c:C": {kind: record}}}, "ratios": {mode:
    {"top:N/c:C": median over rounds of median_ms(new) / median_ms(reuse)}}, "table": [rows of
    the study's table, each with "imap_server"]}."""
    info = {"runs": {}, "ratios": {}, "table": []}
    grouped = {}
    for e in benchmarks:
        m = re.match(r"^imap/(plain|tls)/(reuse|new)/top:(\d+)/c:(\d+)$", e["short_name"])
        if m:
            mode, kind, top, c = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
            grouped.setdefault((mode, top, c), {}).setdefault(kind, []).append(e)
    fields = ("success", "failures", "avg_ms", "median_ms", "p95_ms", "qps", "top", "concurrency", "iterations",
              "warmup", "connections")
    for (mode, top, c), kinds in sorted(grouped.items()):
        key = "top:%d/c:%d" % (top, c)
        per_round = {}
        for kind, entries in kinds.items():
            recs = []
            for e in entries:
                if e.get("error_occurred"):
                    recs.append({"status": "skipped", "reason": e.get("error_message", ""), "round": e.get("round", 0)})
                    continue
                r = {"status": "ok", "round": e.get("round", 0)}
                for f in fields:
                    if f in e:
                        v = e[f]
                        r[f] = int(v) if isinstance(v, float) and v.is_integer() and f not in (
                            "avg_ms", "median_ms", "p95_ms", "qps") else v
                r["errors"] = {k[4:]: int(v) for k, v in e.items() if k.startswith("err:")}
                if e.get("label"):
                    r["label"] = e["label"]
                recs.append(r)
            per_round[kind] = {r["round"]: r.get("median_ms") for r in recs if r["status"] == "ok"}
            ok = sorted((r for r in recs if r["status"] == "ok"), key=lambda r: r.get("median_ms", 0))
            if ok:
                # The round with the median latency; successes and failures summed.
                med = dict(ok[(len(ok) - 1) // 2])
                if len(recs) > 1:
                    med["rounds"] = len(recs)
                    med["median_ms_rounds"] = [r.get("median_ms") for r in ok]
                    med["success"] = sum(r.get("success", 0) for r in ok)
                    med["failures"] = sum(r.get("failures", 0) for r in ok)
                    # Summed like the successes, so that success <= iterations reads right.
                    med["iterations"] = sum(r.get("iterations", 0) for r in ok)
            else:
                med = recs[0]
            info["runs"].setdefault(mode, {}).setdefault(key, {})[kind] = med
        if "new" in per_round and "reuse" in per_round:
            rs = [ratio(per_round["new"][k], per_round["reuse"][k]) for k in sorted(per_round["new"])
                  if k in per_round["reuse"]]
            rs = [r for r in rs if r is not None]
            if rs:
                info["ratios"].setdefault(mode, {})[key] = median(rs)
                if len(rs) > 1:
                    info.setdefault("ratio_rounds", {}).setdefault(mode, {})[key] = rs
        for kind in ("reuse", "new"):
            rec = info["runs"].get(mode, {}).get(key, {}).get(kind)
            if rec is None:
                continue
            # "server" is the port (plain or tls) and "mode" the kind, as before Cyrus was
            # measured; "imap_server" is the IMAP server.
            row = {"imap_server": server, "server": mode, "mode": kind, "top": top, "concurrency": c}
            if rec.get("status") == "ok":
                for f in ("warmup", "iterations", "success", "failures", "avg_ms", "median_ms", "p95_ms", "qps"):
                    row[f] = rec.get(f)
            else:
                row["skipped"] = rec.get("reason")
            info["table"].append(row)
    return info


def imap_checks(imap):
    """Reuse runs must not fail, against either server (informational, like the smtp ones)."""
    checks = []
    for server, one in (imap or {}).get("servers", {}).items():
        for mode, by_key in one.get("runs", {}).items():
            for key, kinds in by_key.items():
                rec = kinds.get("reuse")
                if not rec or rec.get("status") != "ok":
                    continue
                errs = ", ".join("%s x%d" % (k, v) for k, v in rec.get("errors", {}).items())
                check(checks, "imap %s %s %s: reuse failures" % (server, mode, key), rec.get("failures"), "==", 0,
                      errs)
    return checks


def build_named(suite, fields):
    out = {}
    for e in suite.benchmarks:
        if e.get("error_occurred"):
            out[e["short_name"]] = {"status": "failed", "reason": e.get("error_message", "")}
            continue
        rec = {"status": "ok"}
        for k, v in e.items():
            if isinstance(v, (int, float)) and k not in ("family_index", "per_family_instance_index",
                                                          "repetitions", "repetition_index", "threads",
                                                          "iterations"):
                rec[k] = v
        for k in fields:
            rec.setdefault(k, None)
        out[e["short_name"]] = rec
    return out


# ---------------------------------------------------------------------------------------
# Gate and targets


def check(checks, name, value, op, threshold, detail=""):
    if value is None:
        passed = False
    elif op == ">=":
        passed = value >= threshold
    elif op == "<=":
        passed = value <= threshold
    elif op == "==":
        passed = value == threshold
    else:
        raise ValueError(op)
    checks.append({"check": name, "value": value, "op": op, "threshold": threshold, "passed": passed,
                   "detail": detail})


def gate_checks(scaling, suites, require_leak):
    checks = []
    for mode in ("plain", "tls"):
        runs = scaling.get(mode, {}).get(str(GATE_CONCURRENCY), {})
        base, pooled = runs.get("baseline"), runs.get(GATE_POOL)
        detail = ""
        if not base or base.get("status") != "ok":
            detail = "baseline run missing or skipped: %s" % ((base or {}).get("reason") or "not run")
        elif not pooled or pooled.get("status") != "ok":
            detail = "pooled run missing or skipped: %s" % ((pooled or {}).get("reason") or "not run")
        else:
            detail = "%s vs %s ops/s" % (fmt_int(pooled["ops_per_s"]), fmt_int(base["ops_per_s"]))
            rounds = runs.get("ratio_rounds", {}).get("%s/baseline" % GATE_POOL)
            if rounds:
                detail = "median of %d rounds: %s; median runs %s" % (
                    len(rounds), " ".join("%.1f" % r for r in rounds), detail)
        check(checks, "%s: %s/baseline throughput at c=%d" % (mode, GATE_POOL, GATE_CONCURRENCY),
              runs.get("ratios", {}).get("%s/baseline" % GATE_POOL), ">=", GATE_RATIO[mode], detail)
    pooled_runs = 0
    for mode, by_c in scaling.items():
        for c, runs in by_c.items():
            for kind, rec in runs.items():
                if kind.startswith("pool_"):
                    pooled_runs += 1
                    if rec.get("status") != "ok":
                        check(checks, "%s: %s at c=%s ran" % (mode, kind, c), None, "==", 0,
                              rec.get("reason", ""))
                    else:
                        errs = ", ".join("%s x%d" % (k, v["count"]) for k, v in rec["errors"].items())
                        check(checks, "%s: %s at c=%s failures" % (mode, kind, c), rec.get("failures"), "==", 0,
                              errs)
    if pooled_runs == 0:
        check(checks, "pooled scaling runs", None, ">=", 1, "no pooled run was measured")
    scaling_suite = suites.get("scaling")
    if scaling_suite is None or scaling_suite.status != "ok":
        check(checks, "scaling suite ran", None, "==", 1,
              "; ".join(scaling_suite.problems) if scaling_suite else "bench_scaling not built")
    if require_leak:
        leak = suites.get("leak")
        if leak is None or leak.status in ("missing", "not-run"):
            check(checks, "leak suite ran", None, "==", 1,
                  "bench_leak not built (configure with -Dbenchmarks=enabled)")
        else:
            names = [e for e in leak.benchmarks if e["short_name"].startswith("leak/")]
            for want in ("leak/cycles:", "leak/faults:"):
                if not any(e["short_name"].startswith(want) for e in names):
                    check(checks, "%s* ran" % want, None, "==", 1, "; ".join(leak.problems) or "no such result")
            for e in names:
                n = e["short_name"]
                if e.get("error_occurred"):
                    check(checks, "%s ran" % n, None, "==", 1, e.get("error_message", ""))
                    continue
                try:
                    fd_growth = e["fds_after"] - e["fds_before"]
                    rss_growth = e["rss_after"] - e["rss_before"]
                except KeyError as k:
                    check(checks, "%s counters" % n, None, "==", 1, "counter %s missing" % k)
                    continue
                check(checks, "%s: file descriptors grown" % n, int(fd_growth), "<=", 0,
                      "%d -> %d" % (e["fds_before"], e["fds_after"]))
                check(checks, "%s: resident memory grown (bytes)" % n, int(rss_growth), "<=", GATE_RSS_GROWTH,
                      "%.1f MiB -> %.1f MiB" % (e["rss_before"] / 2**20, e["rss_after"] / 2**20))
            if leak.status != "ok":
                check(checks, "leak suite ran cleanly", None, "==", 1, "; ".join(leak.problems))
    return checks


def targets(scaling, ports, checkout=None, smtp=None, imap=None):
    """The issue's targets, measured (None when not measured in this run)."""
    t = []
    unc = ((checkout or {}).get("results") or {}).get("checkout/uncontended/try")
    if unc and unc.get("status") == "ok":
        t.append({"target": "uncontended try_checkout + checkin <= %g ns" % TARGET_CHECKOUT_NS,
                  "value": unc["real_time"], "met": unc["real_time"] <= TARGET_CHECKOUT_NS})
    for mode in ("plain", "tls"):
        r = scaling.get(mode, {}).get("1000", {}).get("ratios", {})
        pools = sorted((k.split("/")[0] for k in r if k.endswith("/baseline")), key=lambda k: int(k.split("_")[1]))
        for p in pools or ["pool_10_90"]:
            v = r.get("%s/baseline" % p)
            t.append({"target": "%s: %s/baseline at c=1000 >= %g" % (mode, p, TARGET_RATIO[mode]),
                      "value": v, "met": None if v is None else v >= TARGET_RATIO[mode]})
    worst = None
    which = None
    for mode, by_c in scaling.items():
        for c, runs in by_c.items():
            for k, v in runs.get("ratios", {}).items():
                if "/dedicated_" in k and int(c) >= int(k.split("/dedicated_")[1]):
                    if worst is None or v < worst:
                        worst, which = v, "%s %s at c=%s" % (mode, k, c)
    t.append({"target": "pooled/dedicated >= %g (lowest, at c >= capacity)" % TARGET_DEDICATED,
              "value": worst, "where": which, "met": None if worst is None else worst >= TARGET_DEDICATED})
    for mode in ("plain", "tls"):
        rec = scaling.get(mode, {}).get("10000", {}).get("pool_100_900")
        v = None if not rec or rec.get("status") != "ok" else rec.get("failures")
        t.append({"target": "%s: 10,000 concurrent over pool_100_900 without failure" % mode, "value": v,
                  "successes": rec.get("successes") if rec else None,
                  "met": None if v is None else v == 0})
    sm = (smtp or {}).get("ratios", {})
    if smtp and smtp.get("planned"):
        v = sm.get("sink", {}).get("pooled/smtp_source_d")
        t.append({"target": "smtp: netpool pooled / smtp-source -d (smtp-sink, same sessions) >= %g"
                            % TARGET_SMTP_VS_SMTP_SOURCE_D,
                  "value": v, "met": None if v is None else v >= TARGET_SMTP_VS_SMTP_SOURCE_D})
        v = sm.get("starttls_auth", {}).get("pooled/no_pool")
        t.append({"target": "smtp: pooled/no_pool with STARTTLS + AUTH (aiosmtpd) >= %g" % TARGET_SMTP_TLS_RATIO,
                  "value": v, "met": None if v is None else v >= TARGET_SMTP_TLS_RATIO})
    if imap and imap.get("planned"):
        # Against Dovecot only: Cyrus's figures are reported, not held to a target.
        tls = imap.get("servers", {}).get("dovecot", {}).get("ratios", {}).get("tls", {})
        worst = min(tls.items(), key=lambda kv: kv[1]) if tls else None
        t.append({"target": "imap (Dovecot only): median latency new/reuse, TLS >= %g (lowest)"
                            % TARGET_IMAP_TLS_RATIO,
                  "value": worst[1] if worst else None, "where": worst[0] if worst else None,
                  "met": None if worst is None else worst[1] >= TARGET_IMAP_TLS_RATIO})
    if ports.get("available"):
        base = [r for n, r in ports["runs"].items() if n.startswith("baseline/") and r.get("status") == "ok"]
        pooled = [r for n, r in ports["runs"].items() if n.startswith("pool_") and r.get("status") == "ok"]
        nports = ports.get("ports")
        peak = max((r.get("peak_connected", 0) for r in base), default=None)
        succ = max((r.get("successes", 0) for r in base), default=None)
        t.append({"target": "ports: baseline stuck near the port count (%s)" % nports,
                  "value": {"max_successes": succ, "max_peak_connected": peak},
                  "met": None if succ is None else succ <= (nports or 0) + 2})
        allok = all(r.get("failures", 1) == 0 and r.get("successes") == r.get("operations") for r in pooled)
        t.append({"target": "ports: pooled completes every operation", "value": allok if pooled else None,
                  "met": allok if pooled else None})
    else:
        t.append({"target": "ports: namespace runs", "value": None, "met": None,
                  "reason": ports.get("reason") or "not run"})
    return t


# ---------------------------------------------------------------------------------------
# Output: table and charts


def print_tables(summary, out):
    sc = summary.get("scaling", {})
    w = out.write
    if sc:
        w("\nScaling, echo over loopback (ops/s = successful operations per second; ratio = pooled/baseline;\n"
          "vs dedicated = pooled/dedicated connections of the same number)\n\n")
        hdr = "%-5s %7s | %10s %8s | %-12s %10s %8s | %7s | %12s\n"
        w(hdr % ("mode", "conc.", "baseline", "failed", "pool", "pooled", "failed", "ratio", "vs dedicated"))
        w("-" * 98 + "\n")
        for mode in ("plain", "tls"):
            for c in sorted(sc.get(mode, {}), key=int):
                runs = sc[mode][c]
                base = runs.get("baseline")
                pools = sorted((k for k in runs if k.startswith("pool_")), key=lambda k: int(k.split("_")[1]))
                if not pools:
                    pools = [None]
                for p in pools:
                    rec = runs.get(p) if p else None
                    cap = sum(int(x) for x in p.split("_")[1:]) if p else 0
                    r = runs["ratios"].get("%s/baseline" % p) if p else None
                    d = runs["ratios"].get("%s/dedicated_%d" % (p, cap)) if p else None
                    w(hdr % (mode, "{:,}".format(int(c)), cell_ops(base), cell_fail(base), p or "-", cell_ops(rec),
                             cell_fail(rec), "%.1fx" % r if r is not None else "-",
                             "%.2f" % d if d is not None else "-"))
        errs = []
        for mode in ("plain", "tls"):
            for c in sorted(sc.get(mode, {}), key=int):
                for kind, rec in sc[mode][c].items():
                    if kind == "ratios":
                        continue
                    if rec.get("status") == "skipped":
                        errs.append("  %s %s c=%s: skipped: %s" % (mode, kind, c, rec["reason"]))
                    for key, e in rec.get("errors", {}).items():
                        errs.append("  %s %s c=%s: %s %s x%d" % (mode, kind, c, key, e["message"], e["count"]))
        if errs:
            w("\nerrors:\n" + "\n".join(errs) + "\n")
    ports = summary.get("ports")
    if ports and ports.get("runs"):
        lo, hi = ports["port_range"]
        w("\nPort exhaustion in a private network namespace: ports %d-%d (%d), tcp_tw_reuse=0\n\n"
          % (lo, hi, hi - lo + 1))
        hdr = "%-22s %10s %10s %10s %14s %14s\n"
        w(hdr % ("run", "operations", "succeeded", "failed", "EADDRNOTAVAIL", "peak connected"))
        w("-" * 86 + "\n")
        for name, rec in ports["runs"].items():
            if rec.get("status") != "ok":
                w("%-22s skipped: %s\n" % (name, rec.get("reason")))
                continue
            w(hdr % (name, "{:,}".format(rec.get("operations", 0)), "{:,}".format(rec.get("successes", 0)),
                     "{:,}".format(rec.get("failures", 0)), "{:,}".format(rec.get("eaddrnotavail", 0)),
                     rec.get("peak_connected", "-")))
        other = set()
        for rec in ports["runs"].values():
            for key, e in rec.get("errors", {}).items():
                if key != "errno:EADDRNOTAVAIL":
                    other.add("  %s %s" % (key, e["message"]))
        if other:
            w("other errors:\n" + "\n".join(sorted(other)) + "\n")
    elif ports and ports.get("available") is False:
        w("\nPort exhaustion: SKIPPED, no private network namespace could be made: %s\n" % ports.get("reason"))
    print_smtp_table(summary.get("smtp"), out)
    print_imap_table(summary.get("imap"), out)
    print_redis_table(summary.get("redis"), out)
    for key in ("checkout", "leak", "memory"):
        sec = summary.get(key)
        if not isinstance(sec, dict) or not sec.get("planned"):
            continue
        if isinstance(sec, dict) and sec.get("results"):
            w("\n%s:\n" % key)
            for name, rec in sec["results"].items():
                if rec.get("status") != "ok":
                    w("  %-28s FAILED: %s\n" % (name, rec.get("reason")))
                elif key == "checkout":
                    w("  %-28s %8.1f %s per operation, %s allocations\n" % (
                        name, rec.get("real_time") or 0, rec.get("time_unit", "ns"),
                        "-" if rec.get("allocs_per_cycle") is None else "%g" % rec["allocs_per_cycle"]))
                elif key == "leak":
                    w("  %-28s fds %d -> %d, rss %.1f -> %.1f MiB, workers %d -> %d\n" % (
                        name, rec.get("fds_before", 0), rec.get("fds_after", 0), rec.get("rss_before", 0) / 2**20,
                        rec.get("rss_after", 0) / 2**20, rec.get("workers_before", 0), rec.get("workers_after", 0)))
                else:
                    w("  %-28s %s bytes per connection\n" % (name, fmt_int(rec.get("bytes_per_connection") or 0)))
        elif isinstance(sec, dict) and sec.get("status") not in (None, "not-run"):
            w("\n%s: %s %s\n" % (key, sec.get("status"), "; ".join(sec.get("problems", []))))


SMTP_TARGET_TITLES = {
    "sink": "Postfix smtp-sink, plain SMTP",
    "starttls_auth": "aiosmtpd, STARTTLS + AUTH PLAIN (verified)",
}
SMTP_KIND_TITLES = {
    "no_pool": "netpool, new session per message",
    "pooled": "netpool, pooled",
    "pooled_no_pipelining": "netpool, pooled, no PIPELINING",
    "smtp_source": "smtp-source, new session per msg",
    "smtp_source_d": "smtp-source -d, sessions reused",
}


def print_smtp_table(smtp, out):
    if not smtp or not smtp.get("planned"):
        return
    w = out.write
    runs = smtp.get("runs", {})
    if not runs:
        w("\nSMTP: %s %s\n" % (smtp.get("status"), "; ".join(smtp.get("problems", [])) or "no result"))
        return
    w("\nSMTP over loopback (msgs/s = messages accepted per second; the same number of sessions\n"
      "in every run against one server; p50/p99 per message, connect and QUIT included without a pool)\n\n")
    hdr = "%-42s %-34s %8s %8s %10s %7s %8s %8s\n"
    w(hdr % ("server", "client", "sessions", "messages", "msgs/s", "failed", "p50 ms", "p99 ms"))
    # messages and failed: summed over the rounds; msgs/s, p50, p99: the median round's.
    w("-" * 132 + "\n")
    notes = []
    for target in ("sink", "starttls_auth"):
        kinds = runs.get(target)
        if not kinds:
            continue
        first = True
        for kind in ("no_pool", "pooled", "pooled_no_pipelining", "smtp_source", "smtp_source_d"):
            rec = kinds.get(kind)
            if rec is None:
                continue
            name = SMTP_TARGET_TITLES.get(target, target) if first else ""
            first = False
            if rec.get("status") != "ok":
                w("%-42s %-34s skipped: %s\n" % (name, SMTP_KIND_TITLES.get(kind, kind), rec.get("reason")))
                continue
            p50, p99 = rec.get("p50_us"), rec.get("p99_us")
            w(hdr % (name, SMTP_KIND_TITLES.get(kind, kind), rec.get("sessions", rec.get("concurrency", "-")),
                     "{:,}".format(rec.get("operations", 0)), fmt_int(rec.get("ops_per_s", 0)),
                     "{:,}".format(rec.get("failures", 0)),
                     "%.2f" % (p50 / 1e3) if p50 else "-", "%.2f" % (p99 / 1e3) if p99 else "-"))
            for key, e in rec.get("errors", {}).items():
                notes.append("  %s %s: %s %s x%d" % (target, kind, key, e["message"], e["count"]))
            got = rec.get("server_received")
            if isinstance(got, (int, float)) and got >= 0 and got != rec.get("successes"):
                notes.append("  %s %s: the server counted %d messages, the client %d" % (
                    target, kind, got, rec.get("successes", 0)))
    ratios = smtp.get("ratios", {})
    parts = []
    labels = {"pooled/no_pool": "pooled/new session", "pooled/smtp_source_d": "netpool pooled/smtp-source -d",
              "smtp_source/smtp_source_d": "smtp-source/smtp-source -d",
              "pooled_no_pipelining/smtp_source_d": "netpool pooled without PIPELINING/smtp-source -d",
              "no_pool/smtp_source": "netpool new session/smtp-source"}
    for target in ("sink", "starttls_auth"):
        for k, v in ratios.get(target, {}).items():
            parts.append("%s %s %.2f" % ("smtp-sink:" if target == "sink" else "aiosmtpd STARTTLS+AUTH:",
                                          labels.get(k, k), v))
    if parts:
        w("\nratios: " + "\n        ".join(parts) + "\n")
    if notes:
        w("\nSMTP errors and mismatches:\n" + "\n".join(notes) + "\n")


# Redis (netpool redis-bench, which starts its own redis-server): INCR through a pool against
# a new connection per command (docs/redis.md#the-bench-netpool-redis-bench).
REDIS_RUNS = {"demo": [(10000, 10), (3000, 1)], "full": [(50000, 10), (50000, 50), (10000, 1)]}


def run_redis(build_dir, mode):
    """Runs `netpool redis-bench --json` for each (requests, concurrency) of the mode."""
    exe = os.path.join(build_dir, "cli", "netpool")
    out = {"planned": True, "status": "ok", "problems": [], "runs": []}
    if not os.access(exe, os.X_OK):
        out["status"] = "missing"
        out["problems"].append("%s not built" % exe)
        return out
    if not shutil.which("redis-server") and not os.access("/usr/bin/redis-server", os.X_OK):
        out["status"] = "missing"
        out["problems"].append("redis-server not installed (Debian: redis-server)")
        return out
    for requests, concurrency in REDIS_RUNS[mode]:
        cmd = [exe, "redis-bench", "--json", "--requests", str(requests), "--concurrency", str(concurrency)]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            out["status"] = "failed"
            out["problems"].append("%s: timed out" % " ".join(cmd[1:]))
            continue
        try:
            rec = json.loads(p.stdout)
        except ValueError:
            rec = None
        if p.returncode != 0 or not isinstance(rec, dict):
            out["status"] = "failed"
            out["problems"].append("%s: exit %d: %s" % (" ".join(cmd[1:]), p.returncode,
                                                         (p.stderr or p.stdout).strip()[-300:]))
            continue
        out["runs"].append(rec)
    return out


def redis_checks(redis):
    checks = []
    for rec in (redis or {}).get("runs", []):
        for run in rec.get("runs", []):
            if run.get("mode") == "pooled":
                check(checks, "redis c=%s: pooled failures" % rec.get("concurrency"), run.get("failures"), "==", 0)
    return checks


def print_redis_table(redis, out):
    if not redis or not redis.get("planned"):
        return
    w = out.write
    if not redis.get("runs"):
        w("\nRedis: %s %s\n" % (redis.get("status"), "; ".join(redis.get("problems", [])) or "no result"))
        return
    w("\nRedis (netpool redis-bench, a private redis-server on loopback): INCR through a pool (pooled) against\n"
      "connect + INCR + QUIT per command (per-command); requests per second, median latency\n")
    w("  %-12s %-9s %14s %14s %12s %12s %10s\n" % ("concurrency", "requests", "per-command/s", "pooled/s",
                                                    "median pc ms", "median p ms", "ratio"))
    for rec in redis["runs"]:
        by = {r.get("mode"): r for r in rec.get("runs", [])}
        pc, po = by.get("per-command", {}), by.get("pooled", {})
        ratio_v = rec.get("rps_ratio_pooled_over_per_command")
        w("  %-12s %-9s %14s %14s %12s %12s %10s\n" % (
            rec.get("concurrency"), rec.get("requests"), fmt_int(pc["rps"]) if "rps" in pc else "-",
            fmt_int(po["rps"]) if "rps" in po else "-",
            "%.3f" % pc["median_ms"] if "median_ms" in pc else "-", "%.3f" % po["median_ms"] if "median_ms" in po else "-",
            "%.1fx" % ratio_v if isinstance(ratio_v, (int, float)) else "-"))
    if redis.get("problems"):
        w("  problems: %s\n" % "; ".join(redis["problems"]))


def print_imap_table(imap, out):
    if not imap or not imap.get("planned"):
        return
    w = out.write
    servers = imap.get("servers") or {}
    if not servers:
        w("\nIMAP: %s %s\n" % (imap.get("status"), "; ".join(imap.get("problems", [])) or "no result"))
        return
    for server, one in servers.items():
        print_imap_server_table(server, one, imap.get("status"), out)


def print_imap_server_table(server, one, suite_status, out):
    w = out.write
    title = IMAP_SERVER_TITLES.get(server, server)
    table = one.get("table") or []
    if not table:
        w("\nIMAP against %s: %s: %s\n" % (title, one.get("status") or suite_status,
                                           "; ".join(one.get("problems", [])) or "no result"))
        return
    skipped = {row.get("skipped") for row in table}
    if None not in skipped and len(skipped) == 1:
        # One reason for every run: the server could not be started (or TLS is missing).
        w("\nIMAP against %s: SKIPPED, every run: %s\n" % (title, skipped.pop()))
        return
    w("\nIMAP against %s over loopback: fetch the newest TOP messages of INBOX; reuse = a pooled\n"
      "logged-in session (imap::client), new = connect, TLS, greeting, login, EXAMINE, SEARCH, FETCH,\n"
      "LOGOUT per fetch. Latency per fetch; qps = successful fetches per second\n\n" % title)
    hdr = "%-6s %-6s %5s %4s %7s %11s %8s %9s %11s %8s %9s\n"
    w(hdr % ("mode", "kind", "top", "c", "warmup", "iterations", "success", "avg(ms)", "median(ms)", "p95(ms)",
             "qps"))
    w("-" * 96 + "\n")
    notes = []
    imap = one
    for row in table:
        if row.get("skipped") is not None:
            w("%-6s %-6s %5d %4d skipped: %s\n" % (row["server"], row["mode"], row["top"], row["concurrency"],
                                                   row["skipped"]))
            continue
        w(hdr % (row["server"], row["mode"], row["top"], row["concurrency"], row.get("warmup"),
                 "{:,}".format(row.get("iterations") or 0), "{:,}".format(row.get("success") or 0),
                 "%.2f" % (row.get("avg_ms") or 0), "%.2f" % (row.get("median_ms") or 0),
                 "%.2f" % (row.get("p95_ms") or 0), "%.1f" % (row.get("qps") or 0)))
        if row.get("failures"):
            rec = imap["runs"][row["server"]]["top:%d/c:%d" % (row["top"], row["concurrency"])][row["mode"]]
            notes.append("  %s %s top:%d c:%d: %d failed: %s" % (row["server"], row["mode"], row["top"],
                                                                row["concurrency"], row["failures"],
                                                                rec.get("label", "")))
    parts = []
    for mode in ("plain", "tls"):
        for key, v in sorted(imap.get("ratios", {}).get(mode, {}).items(),
                             key=lambda kv: tuple(int(x.split(":")[1]) for x in kv[0].split("/"))):
            parts.append("%s %s %.1f" % (mode, key, v))
    if parts:
        w("\nmedian latency new/reuse (%s): %s%s\n" % (
            title, ", ".join(parts),
            "" if server == "dovecot" else "\n(no target: the TLS ratio target is about Dovecot only)"))
    if notes:
        w("\nIMAP failures (%s):\n" % title + "\n".join(notes) + "\n")


def cell_ops(rec):
    if not rec:
        return "-"
    if rec.get("status") != "ok":
        return "skipped"
    return fmt_int(rec["ops_per_s"])


def cell_fail(rec):
    if not rec or rec.get("status") != "ok":
        return "-"
    return "{:,}".format(rec.get("failures", 0))


def kind_label(kind):
    if kind == "baseline":
        return "connection per request"
    m = re.match(r"^pool_(\d+)_(\d+)$", kind)
    if m:
        return "pool %s+%s" % (m.group(1), m.group(2))
    m = re.match(r"^dedicated_(\d+)$", kind)
    if m:
        return "%s dedicated connections (ceiling)" % m.group(1)
    return kind


def make_charts(summary, out_dir):
    """scaling.png (throughput and p99 against concurrency) and ports.png. Returns paths."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, "python3-matplotlib is not installed (apt-get install python3-matplotlib); no chart"
    made = []
    sc = summary.get("scaling", {})
    mach = summary["machine"]
    subtitle = "%s, %s cores, kernel %s, %s; --%s run, %s" % (
        mach.get("cpu_model") or "?", mach.get("nproc"), mach.get("kernel"),
        mach.get("virtualization") or "no virtualization detected", summary["mode"], mach["date"][:10])
    if sc:
        modes = [m for m in ("plain", "tls") if m in sc]
        fig, axes = plt.subplots(2, len(modes), figsize=(6.5 * len(modes), 8.5), squeeze=False)
        colors = {"baseline": "black"}
        palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
        kinds = set()
        for m in modes:
            for c, runs in sc[m].items():
                kinds.update(k for k in runs if k != "ratios")
        pools = sorted((k for k in kinds if k.startswith("pool_")), key=lambda k: int(k.split("_")[1]))
        for i, p in enumerate(pools):
            colors[p] = palette[i % len(palette)]
            cap = sum(int(x) for x in p.split("_")[1:])
            colors["dedicated_%d" % cap] = palette[i % len(palette)]
        order = ["baseline"] + pools + sorted((k for k in kinds if k.startswith("dedicated_")),
                                              key=lambda k: int(k.split("_")[1]))
        for col, m in enumerate(modes):
            for row, (field, ylabel) in enumerate((("ops_per_s", "successful operations / s"),
                                                   ("p99_us", "p99 latency (ms)"))):
                ax = axes[row][col]
                for kind in order:
                    if row == 1 and kind.startswith("dedicated_"):
                        continue  # M coroutines, no queue: its latency is not comparable
                    xs, ys = [], []
                    for c in sorted(sc[m], key=int):
                        rec = sc[m][c].get(kind)
                        if rec and rec.get("status") == "ok" and rec.get(field) is not None:
                            xs.append(int(c))
                            ys.append(rec[field] / (1000.0 if field == "p99_us" else 1.0))
                    if not xs:
                        continue
                    style = "--" if kind.startswith("dedicated_") else "-"
                    label = kind_label(kind)
                    ax.plot(xs, ys, style, marker="o", color=colors.get(kind, "gray"), label=label,
                            linewidth=2 if kind == "baseline" else 1.5, markersize=4)
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.set_xlabel("concurrency (coroutines)")
                ax.set_ylabel(ylabel)
                ax.set_title("%s echo: %s" % ("TLS" if m == "tls" else "plain TCP",
                                              "throughput" if row == 0 else "p99 latency"))
                ax.grid(True, which="both", alpha=0.3)
                if row == 0 and col == 0:
                    ax.legend(fontsize=8)
        fig.suptitle("netpool: connection per request vs pooled, echo over loopback\n" + subtitle, fontsize=10)
        fig.tight_layout()
        path = os.path.join(out_dir, "scaling.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    ports = summary.get("ports", {})
    runs = [(n, r) for n, r in ports.get("runs", {}).items() if r.get("status") == "ok"]
    if runs:
        fig, ax = plt.subplots(figsize=(8, 4))
        names = [n for n, _ in runs]
        ok = [r.get("successes", 0) for _, r in runs]
        bad = [r.get("failures", 0) for _, r in runs]
        xs = range(len(names))
        ax.bar(xs, ok, color="tab:green", label="succeeded")
        ax.bar(xs, bad, bottom=ok, color="tab:red", label="failed (EADDRNOTAVAIL)")
        for x, (n, r) in zip(xs, runs):
            ax.text(x, r.get("successes", 0) + r.get("failures", 0), "%d ok" % r.get("successes", 0),
                    ha="center", va="bottom", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(1, max(o + b for o, b in zip(ok, bad)) * 4)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([n.replace("/", "\n") for n in names], fontsize=8)
        ax.set_ylabel("operations")
        lo, hi = ports["port_range"]
        ax.set_title("Private network namespace, %d ephemeral ports, tcp_tw_reuse=0\n%s"
                     % (hi - lo + 1, subtitle), fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, "ports.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made, None


# ---------------------------------------------------------------------------------------
# Main


def parse_range(text):
    parts = re.split(r"[\s,:-]+", text.strip())
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError("expected 'LOW HIGH', e.g. '40000 40061'")
    lo, hi = int(parts[0]), int(parts[1])
    if not 1024 <= lo <= hi <= 65535:
        raise argparse.ArgumentTypeError("need 1024 <= LOW <= HIGH <= 65535")
    return lo, hi


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--demo", action="store_const", dest="mode", const="demo")
    mode.add_argument("--full", action="store_const", dest="mode", const="full")
    mode.add_argument("--gate", action="store_const", dest="mode", const="gate")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "results"))
    ap.add_argument("--port-range", type=parse_range, default=(40000, 40061))
    ap.add_argument("--no-ports", action="store_true")
    ap.add_argument("--no-smtp", action="store_true", help="leave out the SMTP suite (bench_smtp)")
    ap.add_argument("--no-imap", action="store_true", help="leave out the IMAP suite (bench_imap)")
    ap.add_argument("--no-redis", action="store_true", help="leave out Redis (netpool redis-bench)")
    ap.add_argument("--no-chart", action="store_true")
    ap.add_argument("--only", default=None)
    ap.add_argument("--rounds", type=int, default=None,
                    help="repeat each scaling benchmark N times, alternating the order "
                         "(defaults: --demo %d, --full %d, --gate %d)" % (DEMO_ROUNDS, FULL_ROUNDS, GATE_ROUNDS))
    args = ap.parse_args()

    t_start = time.monotonic()
    bench_dir = os.path.join(args.build, "bench")
    raw_dir = os.path.join(args.out, "raw")
    os.makedirs(raw_dir, exist_ok=True)
    for f in os.listdir(raw_dir):
        if f.endswith(".json"):
            os.unlink(os.path.join(raw_dir, f))

    base_env = dict(os.environ)
    suites = {}
    for name in ("checkout", "scaling", "ports", "leak", "memory", "smtp", "imap"):
        exe = os.path.join(bench_dir, "bench_" + name)
        suites[name] = Suite(name, exe)
        if not os.access(exe, os.X_OK):
            suites[name].status = "missing"
            suites[name].problems.append("%s not built (meson setup --reconfigure %s -Dbenchmarks=enabled)"
                                         % (exe, args.build))

    # The plan: (suite, env, filter, label) per task.
    plan = []
    port_env = {"NETPOOL_BENCH_PORT_RANGE": "%d %d" % args.port_range}

    def add_each(suite_name, env, select=None, rounds=1):
        s = suites[suite_name]
        s.planned = True
        if s.status == "missing":
            return
        s.env = env
        names = list_benchmarks(s, dict(base_env, **env))
        if names is None:
            s.status = "failed"
            return
        tasks = []
        for n in names:
            if select and not any(re.search(p, n) for p in select):
                continue
            if args.only and not n.startswith(args.only):
                continue
            # Names hold only [a-z0-9_/:], and every reported name goes on with
            # "/iterations:1": anchor at both ends of the base name.
            tasks.append(("^%s/" % re.escape(n), n))
        # Several rounds alternate the order (A B, B A, A B, ...), so that the runs a ratio
        # compares are always next to each other in time.
        for r in range(rounds):
            for flt, n in (tasks if r % 2 == 0 else reversed(tasks)):
                label = n if rounds == 1 else "%s (round %d/%d)" % (n, r + 1, rounds)
                plan.append((s, dict(base_env, **env), flt, label, r))

    def add_whole(suite_name, env):
        s = suites[suite_name]
        s.planned = True
        if s.status == "missing":
            return
        if args.only and not suite_name.startswith(args.only) and not args.only.startswith(suite_name):
            return
        s.env = env
        plan.append((s, dict(base_env, **env), None, suite_name + " (whole suite)", 0))

    def add_imap(env, rounds):
        # One process per server and round: the server is started and seeded once per
        # process. Dovecot first, then Cyrus; a server that cannot run makes its benchmarks
        # skipped (with the reason), not the others.
        s = suites["imap"]
        s.planned = True
        s.imap_servers = list(IMAP_SERVERS)
        if s.status == "missing":
            return
        if args.only and not "imap".startswith(args.only) and not args.only.startswith("imap"):
            return
        s.env = env
        flt = ("^%s" % re.escape(args.only)) if args.only and args.only.startswith("imap/") else None
        for server in IMAP_SERVERS:
            for r in range(rounds):
                label = "imap against %s (whole suite%s)" % (
                    server, "" if rounds == 1 else ", round %d/%d" % (r + 1, rounds))
                run_env = dict(env, NETPOOL_BENCH_IMAP_REVERSE=str(r % 2), **imap_server_env(server))
                plan.append((s, dict(base_env, **run_env), flt, label, r))

    if args.mode == "demo":
        add_each("scaling", DEMO_SCALING_ENV, DEMO_SCALING_SELECT, rounds=args.rounds or DEMO_ROUNDS)
        if not args.no_ports:
            add_each("ports", dict(PORTS_DEMO, **port_env))
        if not args.no_smtp:
            add_each("smtp", SMTP_DEMO, rounds=args.rounds or DEMO_ROUNDS)
        if not args.no_imap:
            add_imap(IMAP_DEMO, rounds=args.rounds or IMAP_DEMO_ROUNDS)
    elif args.mode == "full":
        add_each("scaling", SCALING_FULL, rounds=args.rounds or FULL_ROUNDS)
        if not args.no_ports:
            add_each("ports", dict(PORTS_FULL, **port_env))
        add_whole("checkout", {})
        add_whole("memory", FULL_MEMORY_ENV)
        add_whole("leak", FULL_LEAK_ENV)
        if not args.no_smtp:
            add_each("smtp", SMTP_FULL, rounds=args.rounds or FULL_ROUNDS)
        if not args.no_imap:
            add_imap(IMAP_FULL, rounds=args.rounds or IMAP_FULL_ROUNDS)
    else:
        add_each("scaling", GATE_SCALING_ENV, rounds=args.rounds or GATE_ROUNDS)
        add_whole("leak", GATE_LEAK_ENV)

    machine_info = machine()
    sys.stderr.write("bench/run.py --%s: %d benchmark runs, results in %s\n" % (args.mode, len(plan), args.out))
    progress = Progress(len(plan))
    for s, env, flt, label, r in plan:
        run_task(s, env, flt, progress, label, r)

    for s in suites.values():
        if s.status in ("missing", "failed"):
            continue
        ran = any(t[0] is s for t in plan)
        if not ran:
            s.status = "not-run"
            continue
        # A run that produced no result, or exited badly, makes the suite 'failed'. Skipped
        # benchmarks (error_occurred) are reported per benchmark, not as a failed suite.
        bad = [p for p in s.problems if not p.startswith("bench_")]
        s.status = "failed" if bad else "ok"
        if s.benchmarks:
            with open(os.path.join(raw_dir, s.name + ".json"), "w", encoding="utf-8") as f:
                json.dump({"context": s.context, "benchmarks": s.benchmarks}, f, indent=1)

    scaling = build_scaling(suites["scaling"])
    ports = build_ports(suites["ports"] if any(t[0] is suites["ports"] for t in plan) else None,
                        list(args.port_range))
    summary = {
        "schema": 1,
        "mode": args.mode,
        "machine": machine_info,
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
        "suites": {n: {"status": s.status, "planned": s.planned, "problems": s.problems, "env": s.env,
                       "raw": "raw/%s.json" % n if s.benchmarks else None,
                       "library_build_type": (s.context or {}).get("library_build_type")}
                   for n, s in suites.items()},
        "scaling": scaling,
        "ports": ports,
        "leak": {"status": suites["leak"].status, "planned": suites["leak"].planned,
                 "problems": suites["leak"].problems,
                 "results": build_named(suites["leak"], ("fds_before", "fds_after", "rss_before", "rss_after",
                                                         "workers_before", "workers_after"))},
        "memory": {"status": suites["memory"].status, "planned": suites["memory"].planned,
                   "problems": suites["memory"].problems,
                   "results": build_named(suites["memory"], ("bytes_per_connection",))},
    }
    summary["checkout"] = {"status": suites["checkout"].status, "planned": suites["checkout"].planned,
                           "problems": suites["checkout"].problems,
                           "results": build_named(suites["checkout"], ("real_time", "allocs_per_cycle"))}
    summary["smtp"] = build_smtp(suites["smtp"])
    summary["imap"] = build_imap(suites["imap"])
    summary["redis"] = {"planned": False}
    if args.mode in ("demo", "full") and not args.no_redis and not args.only:
        sys.stderr.write("bench/run.py: redis (netpool redis-bench) ...\n")
        summary["redis"] = run_redis(args.build, args.mode)
    summary["targets"] = targets(scaling, ports, summary["checkout"], summary["smtp"], summary["imap"])
    checks = gate_checks(scaling, suites, require_leak=args.mode == "gate")
    if args.mode != "gate":
        checks += smtp_checks(summary["smtp"])
        checks += imap_checks(summary["imap"])
        checks += redis_checks(summary["redis"])
    if args.mode == "gate":
        summary["gate"] = {"verdict": "pass" if all(c["passed"] for c in checks) else "fail", "checks": checks}
    else:
        # Informational: the same checks on this run's data (the leak suite is not required).
        summary["gate"] = {"verdict": "not-run (informational checks below)", "checks": checks}

    charts = []
    if not args.no_chart:
        made, why = make_charts(summary, args.out)
        if why:
            sys.stderr.write("bench/run.py: %s\n" % why)
        charts = made or []
    summary["charts"] = [os.path.basename(p) for p in charts]
    summary["duration_s"] = round(time.monotonic() - t_start, 1)
    summary["machine"]["load_average_at_end"] = list(os.getloadavg())
    with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)

    out = sys.stdout
    m = machine_info
    out.write("\nnetpool benchmarks (--%s), %s: %s cores (%s), kernel %s, %s; load average at start %.1f\n"
              % (args.mode, m["date"], m["nproc"], m.get("cpu_model"), m["kernel"],
                 m.get("virtualization") or "no hypervisor flag", m["load_average_at_start"][0]))
    print_tables(summary, out)
    for n, s in suites.items():
        if s.status in ("missing", "failed") and s.planned and n not in ("leak", "memory", "smtp", "imap"):
            out.write("\nsuite %s: %s\n  %s\n" % (n, s.status.upper(), "\n  ".join(s.problems)))
    if summary["targets"]:
        out.write("\ntargets (docs/benchmarks.md):\n")
        for t in summary["targets"]:
            v = t["value"]
            vs = "%.2f" % v if isinstance(v, float) else json.dumps(v)
            state = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
            out.write("  %-66s %-14s %s%s\n" % (t["target"], vs, state,
                                                 (" (" + t["where"] + ")") if t.get("where") else ""))
    if args.mode == "gate":
        out.write("\ngate:\n")
        for c in checks:
            v = c["value"]
            vs = "%.2f" % v if isinstance(v, float) else ("missing" if v is None else str(v))
            out.write("  %s  %-58s %s (must be %s %s)%s\n" % ("PASS" if c["passed"] else "FAIL", c["check"], vs,
                                                           c["op"], c["threshold"],
                                                           ("  " + c["detail"]) if c["detail"] else ""))
        out.write("gate: %s\n" % summary["gate"]["verdict"].upper())
    out.write("\nwrote %s/: summary.json, raw/*.json%s\n" % (
        os.path.relpath(args.out), "".join(", " + c for c in summary["charts"]) if charts else ", no chart"))
    out.write("took %.0f s\n" % summary["duration_s"])

    if args.mode == "gate":
        return 0 if summary["gate"]["verdict"] == "pass" else 1
    # demo/full: failing pooled runs or a scaling suite that did not run are errors.
    pooled_failed = any(not c["passed"] for c in checks if " failures" in c["check"] or c["check"].endswith(" ran"))
    if suites["scaling"].status != "ok" or pooled_failed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
