// `netpool smtp-send`: a load tool in the spirit of Postfix's smtp-source, on netpool's SMTP
// support. It sends --count messages at --concurrency through smtp::mailer (a keyed pool of
// sessions that have already done TCP, TLS, EHLO and AUTH), or, with --no-pool, through a new
// session per message (connect, greeting, EHLO, STARTTLS, EHLO, AUTH, one transaction, QUIT):
// the baseline a pool is measured against. It prints what was sent, what failed and why
// (grouped, with counts), throughput, latency percentiles and the pool's stats.
//
// Why two paths do not go through the mailer: the mailer always sends through a pool, so the
// --no-pool baseline (a session per message, the thing measured against) and the preflight
// (one session whose capabilities are printed, and whose failure is reported with the stage
// and the server's reply before anything is sent) use the adapter's hooks on a bare
// connection, as the pool itself would.
//
// Secrets: the password comes from a file or an environment variable, never from the
// command line (where `ps` and shell history would show it), and every line this command
// prints passes through a redactor that replaces the password and its base64 forms (what
// AUTH PLAIN and AUTH LOGIN send), in case a server echoes something back.
#include "commands.hpp"
#include "hints.hpp"
#include "login_options.hpp"

#include <netpool/tools/args.hpp>
#include <netpool/tools/load.hpp>
#include <netpool/tools/load_json.hpp>
#include <netpool/tools/metrics_server.hpp>
#include <netpool/tools/pool_run.hpp>
#include <netpool/tools/progress.hpp>
#include <netpool/tools/report.hpp>
#include <netpool/tools/terminal.hpp>

#include <netpool/config.hpp>
#include <netpool/keyed_client.hpp>
#include <netpool/netpool.hpp>
#include <netpool/redact.hpp>
#include <netpool/smtp/adapter.hpp>
#include <netpool/smtp/error.hpp>
#include <netpool/smtp/mailer.hpp>
#include <netpool/smtp/message.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

// See protocols/imap/src/adapter.cpp: g++ 12's -Wmismatched-new-delete on Asio's coroutine
// frames is wrong.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace netpool::cli {

namespace {

constexpr std::string_view usage =
    "usage: netpool smtp-send --to ADDR [--to ADDR ...] [options]\n\n"
    "Sends COUNT messages to an SMTP server, CONCURRENCY at a time, through a pool of\n"
    "authenticated sessions (or, with --no-pool, a new session per message), and prints\n"
    "messages sent and failed (reasons grouped, with counts), messages/s, latency\n"
    "p50/p95/p99 and the pool's stats. One session is opened first to check that the\n"
    "server is reachable and accepts the handshake; if it is not, the cause is printed\n"
    "and nothing is sent.\n\n"
    "server:\n"
    "  --host HOST             server (default 127.0.0.1)\n"
    "  --port N                port (default 25; 587 with --tls starttls, 465 with implicit)\n"
    "  --tls MODE              none | starttls | implicit (default none)\n"
    "  --ca-file FILE          PEM CAs to verify the server with (default: the system's)\n"
    "  --server-name NAME      name the certificate must carry, and SNI (default: HOST)\n"
    "  --insecure-skip-verify  do NOT verify the server's certificate (loud warning)\n"
    "  --helo NAME             EHLO/HELO argument (default localhost)\n"
    "  --timeout T             connect, handshake, each command, a checkout: seconds, or\n"
    "                          e.g. 500ms (default 30)\n"
    "authentication:\n"
    "  --user USER             authenticate (AUTH PLAIN or LOGIN) as USER\n"
    "  --password-file FILE    the password is the first line of FILE\n"
    "  --password-env VAR      the password is in the environment variable VAR\n"
    "                          (there is no --password: a command line is visible to\n"
    "                          every user of the machine and kept in shell history)\n"
    "  --allow-plaintext-auth  allow AUTH over --tls none (the password crosses in clear)\n"
    "message:\n"
    "  --from ADDR             envelope sender and From: (default smtp-send@localhost)\n"
    "  --to ADDR               recipient; repeat for several (required)\n"
    "  --size BYTES            body size (default 512)\n"
    "load:\n"
    "  --count N               messages to send (default 100)\n"
    "  --concurrency C         messages in flight at once (default 10)\n"
    "  --pool-size S           pooled sessions kept open (default: C)\n"
    "  --max-overflow O        extra sessions under load, closed after (default 0)\n"
    "  --no-pool               a new session per message (the baseline); QUIT after each\n"
    "  --retries N             pooled: send again what cannot arrive twice (a lost session\n"
    "                          before the final dot, 421, 4xx), up to N more times per\n"
    "                          message (default 2); an unknown outcome is never sent again\n"
    "output:\n"
    "  --json                  one JSON object (pool stats included) instead of text; on any\n"
    "                          failure {\"error\": {\"where\", \"what\", \"hint\"}} instead\n"
    "  --progress              progress on stderr even when it is not a terminal\n";
constexpr std::string_view usage_exit =
    "\nExit status: 0 every message was accepted, 1 some failed or the server could not be\n"
    "used, 2 a mistake in the options.\n";

struct send_config {
    endpoint ep;
    bool insecure = false;
    bool allow_plaintext_auth = false;
    std::string helo = "localhost";
    std::chrono::milliseconds timeout{30000};
    std::string user;
    netpool::secret password;  // held once, wiped at exit
    std::string from = "smtp-send@localhost";
    std::vector<std::string> to;
    std::size_t size = 512;
    std::size_t count = 100;
    std::size_t concurrency = 10;
    std::size_t pool_size = 0;  // 0: the concurrency
    std::size_t max_overflow = 0;
    bool no_pool = false;
    std::size_t retries = 2;  // smtp::retry_policy's default: 3 attempts
    bool json = false;
    bool progress = false;
    bool help = false;
    tools::metrics_options metrics;  // --metrics-port, --metrics-address
};

// ---- options ----------------------------------------------------------------------------

/// Parses the command line into `cfg`. Throws tools::usage_error naming the option.
void parse_config(std::span<const std::string_view> args, send_config& cfg) {
    option_values v;
    tools::command_line cl;
    refuse_password_options(cl);
    text_options(cl, v, {"host", "port", "tls", "ca-file", "server-name", "helo", "user", "password-file",
                         "password-env", "from"});
    cl.repeated("to", cfg.to);
    cl.duration("timeout", cfg.timeout);
    cl.count("size", cfg.size, 0, 100'000'000);
    cl.count("count", cfg.count, 1, 1'000'000);
    cl.count("concurrency", cfg.concurrency, 1, 1'000'000);
    cl.count("pool-size", cfg.pool_size, 1, 1'000'000);
    cl.count("max-overflow", cfg.max_overflow, 0, 1'000'000);
    cl.count("retries", cfg.retries, 0, 100);
    cl.flag("insecure-skip-verify", cfg.insecure);
    cl.flag("allow-plaintext-auth", cfg.allow_plaintext_auth);
    cl.flag("no-pool", cfg.no_pool);
    cl.flag("json", cfg.json);
    cl.flag("progress", cfg.progress);
    cl.flag("help", cfg.help);
    cfg.metrics.declare(cl);
    cl.parse(args);
    if (cfg.help) return;
    cfg.metrics.check(cl);

    if (cl.given("host")) cfg.ep.host = v.at("host");
    if (cfg.ep.host.empty()) throw tools::usage_error("--host must not be empty");
    read_tls_mode(cl, v, cfg.ep);
    cfg.ep.port = cfg.ep.tls == tls_mode::starttls ? 587 : cfg.ep.tls == tls_mode::implicit ? 465 : 25;
    if (cl.given("port")) {
        const auto p = tools::parse_unsigned(v.at("port"), 1, 65535);
        if (!p) throw tools::command_line::bad_value("port", "a port number (1-65535)", v.at("port"));
        cfg.ep.port = static_cast<std::uint16_t>(*p);
    }
    read_tls_files(cl, v, cfg.ep, {"insecure-skip-verify"});
    cfg.ep.tls_opts.verify = !cfg.insecure;
    if (cfg.insecure && cl.given("ca-file"))
        throw tools::usage_error("--insecure-skip-verify and --ca-file contradict each other: choose one");
    if (cl.given("helo")) cfg.helo = v.at("helo");

    if (cl.given("password-file") && cl.given("password-env"))
        throw tools::usage_error("--password-file and --password-env: give one of them, not both");
    if (cl.given("user")) {
        cfg.user = v.at("user");
        if (cfg.user.empty()) throw tools::usage_error("--user must not be empty");
    }
    const bool password_given = cl.given("password-file") || cl.given("password-env");
    if (!cfg.user.empty() && !password_given)
        throw tools::usage_error("--user needs a password: --password-file FILE or --password-env VAR");
    if (cfg.user.empty() && password_given)
        throw tools::usage_error(std::string("--") + (cl.given("password-file") ? "password-file" : "password-env") +
                                 " needs --user");
    if (auto password = read_password(cl, v, "netpool smtp-send")) cfg.password = std::move(*password);
    if (!cfg.user.empty() && cfg.ep.tls == tls_mode::none && !cfg.allow_plaintext_auth)
        throw tools::usage_error(
            "--user with --tls none would send the password in clear text: use --tls starttls or --tls implicit, "
            "or add --allow-plaintext-auth");

    if (cl.given("from")) cfg.from = v.at("from");
    if (cfg.to.empty()) throw tools::usage_error("--to is required (repeat it for several recipients)");
    if (cfg.no_pool && (cl.given("pool-size") || cl.given("max-overflow")))
        throw tools::usage_error(std::string("--no-pool and --") +
                                 (cl.given("pool-size") ? "pool-size" : "max-overflow") +
                                 " contradict each other: --no-pool opens a new session per message");
    if (cfg.no_pool && cl.given("retries"))
        throw tools::usage_error("--no-pool and --retries contradict each other: --no-pool sends each message once, "
                                 "on its own session");
    if (cfg.pool_size == 0) cfg.pool_size = cfg.concurrency;
}

// ---- the message ------------------------------------------------------------------------

/// A body of `size` bytes: lines of at most 76 characters, CRLF line ends counted.
std::string make_body(std::size_t size) {
    static constexpr std::string_view filler =
        "netpool smtp-send test message: the quick brown fox jumps over the lazy dog. ";
    std::string body;
    body.reserve(size);
    std::size_t column = 0, k = 0;
    while (body.size() < size) {
        if (size - body.size() >= 2 && column == 76) {
            body += "\r\n";
            column = 0;
            continue;
        }
        body += filler[k++ % filler.size()];
        ++column;
    }
    return body;
}

// ---- outcomes ---------------------------------------------------------------------------

/// The recipients a sent message did not reach ("<addr>: 550 5.1.1 text"), counted.
/// What the summary counts besides sent and failed.
struct send_tally {
    std::map<std::string, std::size_t> refused;  // recipients refused in messages that were sent
    std::size_t unknown = 0;       // outcome unknown: the final dot went out, no reply came
    std::size_t retried = 0;       // messages that took more than one transaction
    std::uint64_t transactions = 0;
};

void count_result(const smtp::send_result& r, send_tally& tally) {
    tally.transactions += r.attempts;
    if (r.attempts > 1) ++tally.retried;
    if (r.ec == smtp::errc::outcome_unknown) ++tally.unknown;
    if (!r.sent) return;
    auto& refused = tally.refused;
    for (const auto& rc : r.recipients) {
        if (rc.accepted()) continue;
        std::string s = "<" + rc.address + ">: " + std::to_string(rc.code);
        // The text usually repeats the enhanced status code; add it only when it does not.
        if (rc.status && !rc.text.starts_with(rc.status->to_string())) s += " " + rc.status->to_string();
        if (!rc.text.empty()) s += " " + rc.text.substr(0, 100);
        ++refused[s];
    }
}

/// A send as the load driver counts it: latency up to the server's 250 for the message.
tools::outcome outcome_of(const smtp::send_result& r, tools::load_clock::time_point accepted_at) {
    if (r.sent) {
        tools::outcome o;
        o.until = accepted_at;
        return o;
    }
    std::string s = (r.stage.empty() ? std::string("send") : r.stage) + ": " + r.ec.message();
    if (r.last_reply) {
        std::string text = r.last_reply->to_string();
        if (text.size() > 120) text = text.substr(0, 117) + "...";
        s += " (server: " + text + ")";
    }
    if (!r.detail.empty()) s += "; " + r.detail;
    return tools::outcome::failure(std::move(s));
}

asio::awaitable<std::error_code> quit(const smtp::adapter& proto, connection& c) {
    co_await proto.close(c);
    co_return std::error_code{};
}

/// One session without a pool: connect (implicit TLS), greeting, EHLO, STARTTLS, AUTH.
/// On failure `stage` says which part failed.
asio::awaitable<std::error_code> open_session(const smtp::adapter& proto, connection& c,
                                              std::chrono::milliseconds timeout, std::string& stage) {
    stage = "connect";
    auto ec = co_await connect_transport(c, timeout, timeout);
    if (ec) co_return ec;
    stage = "handshake";
    co_return co_await with_timeout(proto.handshake(c), timeout, make_error_code(errc::handshake_timeout));
}

/// What went wrong in a handshake, in words: the error, and the server's reply when the
/// adapter kept one.
std::string handshake_failure(const smtp::adapter& proto, const std::string& stage, const std::error_code& ec) {
    return describe_failure(stage, ec, stage == "handshake" ? proto.last_handshake_failure() : std::string());
}

std::string hint(const send_config& cfg, const smtp::adapter& proto, const std::string& stage, const std::error_code& ec) {
    hint_context h = hint_context::for_endpoint(cfg.ep);
    h.starttls_port = "587";
    h.implicit_port = "465";
    h.plaintext_flag = "--allow-plaintext-auth";
    return hint_for(h, ec, stage == "handshake" ? proto.last_handshake_failure() : std::string());
}

/// The server's capabilities from a session's EHLO: "ESMTP, PIPELINING, SIZE 1000, AUTH PLAIN".
std::string capabilities(const connection& c) {
    const auto* k = smtp::adapter::session_capabilities(c);
    if (!k) return {};
    std::string caps = k->esmtp ? "ESMTP" : "SMTP (HELO)";
    if (k->pipelining) caps += ", PIPELINING";
    if (k->size) caps += ", SIZE " + std::to_string(*k->size);
    if (!k->auth.empty()) {
        caps += ", AUTH";
        for (const auto& m : k->auth) caps += " " + m;
    }
    return caps;
}

// ---- the messages -----------------------------------------------------------------------

/// The COUNT messages: one rendering, each copy with its own Message-ID
/// (<RUN.SEQUENCE@helo>, RUN random per run, SEQUENCE 1, 2, ...), so that a server, or a
/// test, can tell a duplicate from the next message.
class message_source {
public:
    message_source(smtp::message m, const std::string& helo) {
        std::random_device rd;
        char run[17];
        std::snprintf(run, sizeof run, "%08x%08x", rd(), rd());
        const std::string marker = std::string(run) + '.';
        m.headers.emplace_back("Message-ID", "<" + marker + std::string(digits, '0') + "@" + helo + ">");
        rendered_ = m.render(helo);
        at_ = rendered_.find(marker) + marker.size();
    }
    /// The rendering with sequence 0, for its size.
    const std::string& first() const noexcept { return rendered_; }
    /// The next message. Single-threaded (the command's io_context).
    std::string next() const {
        std::string copy = rendered_;
        const std::string n = std::to_string(++sequence_);
        copy.replace(at_ + digits - n.size(), n.size(), n);
        return copy;
    }

private:
    static constexpr std::size_t digits = 10;
    std::string rendered_;
    std::size_t at_ = 0;
    mutable std::uint64_t sequence_ = 0;
};

// ---- the pooled run ---------------------------------------------------------------------

struct pool_report {
    std::size_t warm = 0;
    tools::warm_result warmed;
    pool_stats stats;
};

/// Sends through smtp::mailer. The pool the mailer makes for the account is opened first
/// (the sessions the concurrency can use, held at once) through a handle on the same key,
/// which also gives its stats and drains it at the end.
tools::load_result run_pooled(asio::io_context& ioc, const smtp::account& acct, const smtp::envelope& env,
                              const message_source& messages, const send_config& cfg, const tools::load_options& lo,
                              send_tally& tally, pool_report& out, tools::metrics_server* metrics) {
    registry reg(ioc.get_executor());
    smtp::mailer mailer(reg);
    const keyed_client<smtp::adapter> pools(reg);
    const auto handle = pools.acquire(acct.server, acct.client.cred, acct.pool, [&] { return smtp::adapter(acct.client); });
    // The registry's pools (the mailer's) while they exist: gone before the registry.
    const tools::metrics_publication published(metrics, [&reg] { return reg.stats(); });
    out.warm = std::min(cfg.concurrency, cfg.pool_size + cfg.max_overflow);
    out.warmed = tools::warm_pool(ioc, handle.pool(), out.warm);
    auto r = tools::drive(ioc, lo, [&](std::size_t) -> asio::awaitable<tools::outcome> {
        const auto res = co_await mailer.send(acct, env, messages.next());
        const auto accepted_at = tools::load_clock::now();
        count_result(res, tally);
        co_return outcome_of(res, accepted_at);
    });
    out.stats = handle.pool().stats();
    tools::close_pool(ioc, handle.pool());
    return r;
}

std::string pool_text(const pool_report& p) {
    const auto& s = p.stats;
    const auto co = [&](checkout_result k) { return static_cast<unsigned long long>(s.checkouts[static_cast<int>(k)]); };
    const auto cl = [&](close_reason k) { return static_cast<unsigned long long>(s.closes[static_cast<int>(k)]); };
    char buf[768];
    std::snprintf(buf, sizeof buf,
                  "pool: %zu of %zu sessions opened in %.1f ms before timing%s\n"
                  "  connects %llu ok, %llu failed; checkouts %llu ok, %llu timed out, %llu endpoint down\n"
                  "  closes: broken %llu, overflow %llu, health %llu; checkout wait p50 <= %.0f us, p99 <= %.0f us\n"
                  "  at the end: %zu idle, %zu leased, %zu connecting%s\n",
                  p.warm - p.warmed.failed, p.warm, p.warmed.seconds * 1e3, p.warmed.failed ? " (some FAILED)" : "",
                  static_cast<unsigned long long>(s.connects_ok), static_cast<unsigned long long>(s.connects_failed),
                  co(checkout_result::ok), co(checkout_result::timeout), co(checkout_result::endpoint_down),
                  cl(close_reason::broken), cl(close_reason::overflow), cl(close_reason::health),
                  s.checkout_wait.quantile(0.5) * 1e6, s.checkout_wait.quantile(0.99) * 1e6, s.idle, s.leased,
                  s.connecting, s.endpoint_down ? "; endpoint DOWN" : "");
    return buf;
}

std::vector<std::pair<std::string, std::size_t>> by_count(const std::map<std::string, std::size_t>& m) {
    std::vector<std::pair<std::string, std::size_t>> v(m.begin(), m.end());
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    return v;
}

}  // namespace

int smtp_send_main(std::span<const std::string_view> args) {
    tools::command_report report("smtp-send", tools::json_requested(args));
    send_config cfg;
    try {
        parse_config(args, cfg);
    } catch (const tools::usage_error& e) {
        return report.usage(e.what());
    }
    if (cfg.help) {
        std::cout << usage << tools::metrics_usage << usage_exit;
        if (!NETPOOL_HAS_TLS) std::cout << "\nTLS is not available in this build: " << NETPOOL_NO_TLS_REASON << ".\n";
        return tools::exit_ok;
    }
    netpool::redactor redact;
    // A very short password would match ordinary words of the output; it is never printed by
    // this command anyway, so its raw forms only from 4 bytes on.
    redact.add_credential(cfg.user, cfg.password, 4);
    report.set_scrub([&redact](std::string s) { return redact(std::move(s)); });
    report.set_context("server", cfg.ep.to_string());
    // Before the preflight, so that a taken port is reported at once (exit 2).
    std::unique_ptr<tools::metrics_server> metrics;
    try {
        metrics = tools::start_metrics(cfg.metrics);
    } catch (const tools::usage_error& e) {
        return report.usage(e.what());
    }
    auto& out = std::cout;

    smtp::account acct;
    acct.server = cfg.ep;
    auto& copts = acct.client;
    copts.helo_name = cfg.helo;
    copts.cred.user = cfg.user;
    copts.cred.secret = cfg.password;
    copts.allow_plaintext_auth = cfg.allow_plaintext_auth;
    copts.command_timeout = cfg.timeout;
    copts.data_timeout = cfg.timeout;
    auto& po = acct.pool;
    po.size = cfg.pool_size;
    po.max_overflow = cfg.max_overflow;
    po.checkout_timeout = cfg.timeout;
    po.connect_timeout = cfg.timeout;
    po.handshake_timeout = cfg.timeout;
    po.overflow_ttl = std::chrono::seconds(1);  // a burst does not churn its overflow sessions
    acct.retry.max_attempts = static_cast<unsigned>(cfg.retries) + 1;
    try {
        copts.validate();
        po.validate();
        acct.retry.validate();
    } catch (const config_error& e) {
        return report.usage(std::string("invalid setting: ") + e.what());
    }
    if (cfg.insecure)
        std::cerr << "\n"
                     "  ********************************************************************\n"
                     "  WARNING: --insecure-skip-verify: the server's certificate is NOT\n"
                     "  verified. Anyone between here and " << cfg.ep.host << " can pose as the server\n"
                     "  and read the password and every message. Use --ca-file instead.\n"
                     "  ********************************************************************\n\n";

    std::shared_ptr<asio::ssl::context> tls_ctx;
    try {
        tls_ctx = client_tls_context(cfg.ep);
    } catch (const tools::usage_error& e) {
        return report.usage(e.what());
    }

    smtp::message msg;
    msg.from = cfg.from;
    msg.to = cfg.to;
    msg.subject = "netpool smtp-send test";
    msg.text = make_body(cfg.size);
    smtp::envelope env;
    std::optional<message_source> messages;
    try {
        env = msg.make_envelope();
        messages.emplace(msg, cfg.helo);
    } catch (const std::exception& e) {
        return report.usage(std::string("cannot build the message: ") + e.what());
    }
    const std::string& content = messages->first();

    const smtp::adapter proto(copts);
    asio::io_context ioc;
    std::uint64_t next_id = 1;

    // Preflight: one session, so that an unusable server is reported once, with its cause,
    // instead of as COUNT identical failures.
    {
        std::error_code ec = make_error_code(errc::operation_timeout);
        std::string stage = "connect", caps;
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                connection c(ioc.get_executor(), cfg.ep, tls_ctx.get(), next_id++);
                ec = co_await open_session(proto, c, cfg.timeout, stage);
                if (!ec) {
                    caps = capabilities(c);
                    co_await with_timeout(quit(proto, c), cfg.timeout, make_error_code(errc::operation_timeout));
                }
                c.io().close();
            },
            asio::detached);
        ioc.run();
        if (ec)
            return report.failure("preflight " + stage,
                                  "cannot use " + cfg.ep.to_string() + ": " + handshake_failure(proto, stage, ec),
                                  hint(cfg, proto, stage, ec));
        if (!cfg.json) {
            out << redact("server " + cfg.ep.to_string() + ": " + caps +
                          (cfg.user.empty() ? "" : "; authenticated as " + cfg.user) +
                          (cfg.ep.tls == tls_mode::none ? "" : cfg.insecure ? "; TLS NOT verified" : "; TLS verified"))
                << "\n";
            out << cfg.count << " messages of " << content.size() << " bytes (body " << cfg.size << ") to "
                << cfg.to.size() << " recipient" << (cfg.to.size() == 1 ? "" : "s") << ", concurrency "
                << cfg.concurrency << ", "
                << (cfg.no_pool ? std::string("a new session per message (--no-pool)")
                                : "pool " + std::to_string(cfg.pool_size) + " + " + std::to_string(cfg.max_overflow))
                << "\n";
        }
    }

    tools::progress shown("smtp-send", cfg.count, tools::progress_wanted(cfg.progress));
    const tools::load_options lo{cfg.count, cfg.concurrency, &shown, {}};
    send_tally tally;
    std::optional<pool_report> pooled;
    tools::load_result r;
    if (cfg.no_pool) {
        r = tools::drive(ioc, lo, [&](std::size_t) -> asio::awaitable<tools::outcome> {
            connection c(ioc.get_executor(), cfg.ep, tls_ctx.get(), next_id++);
            std::string stage;
            tools::outcome o;
            auto ec = co_await open_session(proto, c, cfg.timeout, stage);
            if (ec) {
                o = tools::outcome::failure(handshake_failure(proto, stage, ec));
            } else {
                const auto res = co_await proto.send(c, env, messages->next());
                o = outcome_of(res, tools::load_clock::now());
                count_result(res, tally);
                co_await with_timeout(quit(proto, c), cfg.timeout, make_error_code(errc::operation_timeout));
            }
            c.io().close();
            co_return o;
        });
    } else {
        pooled.emplace();
        r = run_pooled(ioc, acct, env, *messages, cfg, lo, tally, *pooled, metrics.get());
    }

    const auto reasons = r.failures_by_count();
    const auto refusals = by_count(tally.refused);
    const int status = r.failed == 0 ? tools::exit_ok : tools::exit_failure;
    if (cfg.json) {
        tools::json doc;
        doc["server"] = cfg.ep.to_string();
        doc["mode"] = cfg.no_pool ? "no_pool" : "pooled";
        doc["count"] = cfg.count;
        doc["concurrency"] = cfg.concurrency;
        doc["message_bytes"] = content.size();
        doc["sent"] = r.ok;
        doc["failed"] = r.failed;
        doc["unknown"] = tally.unknown;  // among the failed: the message may have arrived
        doc["retried"] = tally.retried;
        doc["transactions"] = tally.transactions;
        doc["seconds"] = tools::rounded(r.seconds, 6);
        doc["messages_per_s"] = tools::rounded(r.per_second(), 1);
        doc["latency_us"] = {{"p50", tools::rounded(r.lat.percentile(0.5), 1)},
                             {"p95", tools::rounded(r.lat.percentile(0.95), 1)},
                             {"p99", tools::rounded(r.lat.percentile(0.99), 1)}};
        doc["failures"] = tools::failures_json(r);
        doc["refused_recipients"] = tools::json::array();
        for (const auto& [why, n] : refusals) doc["refused_recipients"].push_back({{"reply", why}, {"count", n}});
        if (pooled)
            doc["pool"] = {{"size", cfg.pool_size},
                           {"max_overflow", cfg.max_overflow},
                           {"warm_sessions", pooled->warm},
                           {"warm_failed", pooled->warmed.failed},
                           {"warm_seconds", pooled->warmed.seconds},
                           {"stats", tools::stats_json(pooled->stats)}};
        report.result(doc);
        return status;
    }
    std::ostringstream t;
    char buf[512];
    std::snprintf(buf, sizeof buf, "sent %zu, failed %zu in %.3f s: %.0f messages/s\n", r.ok, r.failed, r.seconds,
                  r.per_second());
    t << buf;
    if (tally.unknown > 0)
        t << "  of the failed, " << tally.unknown
          << " with an unknown outcome (the final dot went out, no reply came: the server may have them)\n";
    if (tally.retried > 0)
        t << "  " << tally.retried << " message" << (tally.retried == 1 ? "" : "s") << " took more than one transaction ("
          << tally.transactions << " transactions in all)\n";
    if (r.ok > 0) {
        std::snprintf(buf, sizeof buf,
                      "latency (to the server's 250 for the message, %s included): p50 %.1f ms, p95 %.1f ms, "
                      "p99 %.1f ms\n",
                      cfg.no_pool ? "connect" : "checkout", r.lat.percentile(0.5) / 1e3, r.lat.percentile(0.95) / 1e3,
                      r.lat.percentile(0.99) / 1e3);
        t << buf;
    }
    if (!reasons.empty()) {
        t << "failures:\n";
        for (const auto& [why, n] : reasons) t << "  " << n << " x " << tools::terminal_safe(redact(why)) << "\n";
    }
    if (!refusals.empty()) {
        t << "recipients refused in messages that were sent:\n";
        for (const auto& [why, n] : refusals) t << "  " << n << " x " << tools::terminal_safe(redact(why)) << "\n";
    }
    if (pooled) t << pool_text(*pooled);
    out << redact(t.str());
    return status;
}

}  // namespace netpool::cli
