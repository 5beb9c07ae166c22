// `netpool smtp-send`: a load tool in the spirit of Postfix's smtp-source, on netpool's SMTP
// adapter. It sends --count messages at --concurrency through a pool of sessions that have
// already done TCP, TLS, EHLO and AUTH, or, with --no-pool, through a new session per
// message (connect, greeting, EHLO, STARTTLS, EHLO, AUTH, one transaction, QUIT): the
// baseline a pool is measured against. It prints what was sent, what failed and why
// (grouped, with counts), throughput, latency percentiles and the pool's stats.
//
// Secrets: the password comes from a file or an environment variable, never from the
// command line (where `ps` and shell history would show it), and every line this command
// prints passes through a redactor that replaces the password and its base64 forms (what
// AUTH PLAIN and AUTH LOGIN send), in case a server echoes something back.
#include "args.hpp"
#include "commands.hpp"

#include "terminal.hpp"
#include "password_file.hpp"
#include <netpool/redact.hpp>
#include <netpool/config.hpp>
#include <netpool/netpool.hpp>
#include <netpool/smtp/adapter.hpp>
#include <netpool/smtp/error.hpp>
#include <netpool/smtp/message.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace netpool::cli {

namespace {

using clock_type = std::chrono::steady_clock;

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
    "output:\n"
    "  --json                  one JSON object (pool stats included) instead of text\n\n"
    "Exit status: 0 every message was accepted, 1 some failed or the server could not be\n"
    "used, 2 a mistake in the options.\n";

constexpr std::array<option_spec, 22> specs{{
    {"host", true},          {"port", true},          {"tls", true},
    {"ca-file", true},       {"server-name", true},   {"insecure-skip-verify", false},
    {"helo", true},          {"timeout", true},       {"user", true},
    {"password-file", true}, {"password-env", true},  {"allow-plaintext-auth", false},
    {"from", true},          {"to", true},            {"size", true},
    {"count", true},         {"concurrency", true},   {"pool-size", true},
    {"max-overflow", true},  {"no-pool", false},      {"json", false},
    {"help", false},
}};

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
    bool json = false;
};

int usage_error(const std::string& message) {
    std::cerr << "netpool smtp-send: " << message << " (see netpool smtp-send --help)\n";
    return exit_usage;
}

// ---- secrets ----------------------------------------------------------------------------

/// Replaces every form of the password this command could have sent with "[redacted]"
/// (netpool::redactor: raw, and the base64 of AUTH LOGIN and AUTH PLAIN).
class redactor {
public:
    redactor(const std::string& user, std::string_view password) {
        // A very short password would match ordinary words of the output; it is never
        // printed by this command anyway, so its raw forms only from 4 bytes on.
        r_.add_credential(user, password, 4);
    }
    std::string operator()(std::string s) const { return r_(std::move(s)); }

private:
    netpool::redactor r_;
};

/// The password from --password-file (its first line) or --password-env. nullopt with
/// `error` set on failure; the error never contains the password.
std::optional<std::string> read_password(const parsed_options& o, std::string& error) {
    if (auto it = o.find("password-file"); it != o.end()) {
        const std::string path(it->second);
        std::ifstream f(path, std::ios::binary);
        if (!f) {
            error = "--password-file: cannot read '" + path + "': " + std::strerror(errno);
            return std::nullopt;
        }
        std::string line;
        std::getline(f, line);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) {
            error = "--password-file: the first line of '" + path + "' is empty";
            return std::nullopt;
        }
        if (auto w = password_file_warning("netpool smtp-send", path); !w.empty()) std::cerr << w << "\n";
        return line;
    }
    if (auto it = o.find("password-env"); it != o.end()) {
        const std::string var(it->second);
        const char* v = std::getenv(var.c_str());
        if (!v || !*v) {
            error = "--password-env: the environment variable '" + var + "' is not set or empty";
            return std::nullopt;
        }
        return std::string(v);
    }
    return std::string();
}

// ---- options ----------------------------------------------------------------------------

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
    std::uint64_t scale = 1000;
    if (s.ends_with("ms")) {
        scale = 1;
        s.remove_suffix(2);
    } else if (s.ends_with("s")) {
        s.remove_suffix(1);
    }
    const auto v = parse_unsigned<std::uint64_t>(s, 1, 86'400'000);
    if (!v || *v * scale > 86'400'000) return std::nullopt;
    return std::chrono::milliseconds(*v * scale);
}

/// Parses the command line into `cfg`. Returns an exit code when the command should stop
/// here (help or a mistake), nullopt to go on.
std::optional<int> parse_config(std::span<const std::string_view> args, send_config& cfg) {
    // --to may be repeated, which parse_options refuses: collect it here, and hand the rest
    // on (keeping each option's value with it).
    std::vector<std::string_view> rest;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view a = args[i];
        const std::string_view name = a.starts_with("--") ? a.substr(2, a.find('=') - 2) : std::string_view{};
        if (name == "password" || name == "pass")  // never parsed: refused with the reason
            return usage_error("--" + std::string(name) +
                               " is refused: a password given on the command line can be read by every user of "
                               "this machine (ps, /proc) and stays in shell history; use --password-file FILE "
                               "or --password-env VAR");
        if (name == "to") {
            if (a.size() > 4 && a[4] == '=') {
                cfg.to.emplace_back(a.substr(5));
            } else if (i + 1 < args.size()) {
                cfg.to.emplace_back(args[++i]);
            } else {
                return usage_error("option '--to' needs a value");
            }
            continue;
        }
        rest.push_back(a);
        const bool takes_value = std::any_of(specs.begin(), specs.end(), [&](const option_spec& s) {
            return s.name == name && s.takes_value;
        });
        if (takes_value && a.find('=') == std::string_view::npos && i + 1 < args.size()) rest.push_back(args[++i]);
    }
    std::string error;
    auto opts = parse_options(rest, specs, error);
    if (!opts) return usage_error(error);
    const auto& o = *opts;
    const auto has = [&](std::string_view n) { return o.count(n) > 0; };
    const auto get = [&](std::string_view n) { return std::string(o.find(n)->second); };
    if (has("help")) {
        std::cout << usage;
        if (!NETPOOL_HAS_TLS) std::cout << "\nTLS is not available in this build: " << NETPOOL_NO_TLS_REASON << ".\n";
        return exit_ok;
    }

    if (has("host")) cfg.ep.host = get("host");
    if (cfg.ep.host.empty()) return usage_error("--host must not be empty");
    if (has("tls")) {
        const std::string m = get("tls");
        if (m == "none") cfg.ep.tls = tls_mode::none;
        else if (m == "starttls") cfg.ep.tls = tls_mode::starttls;
        else if (m == "implicit") cfg.ep.tls = tls_mode::implicit;
        else return usage_error("--tls expects none, starttls or implicit, got '" + m + "'");
    }
    if (cfg.ep.tls != tls_mode::none && !NETPOOL_HAS_TLS)
        return usage_error(std::string("--tls ") + to_string(cfg.ep.tls) + ": " + NETPOOL_NO_TLS_REASON);
    cfg.ep.port = cfg.ep.tls == tls_mode::starttls ? 587 : cfg.ep.tls == tls_mode::implicit ? 465 : 25;
    if (has("port")) {
        auto v = parse_unsigned<std::uint16_t>(o.find("port")->second, 1, 65535);
        if (!v) return usage_error("--port expects a port number (1-65535), got '" + get("port") + "'");
        cfg.ep.port = *v;
    }
    for (const char* tls_only : {"ca-file", "server-name", "insecure-skip-verify"})
        if (has(tls_only) && cfg.ep.tls == tls_mode::none)
            return usage_error(std::string("--") + tls_only + " needs --tls starttls or --tls implicit");
    if (has("ca-file")) {
        cfg.ep.tls_opts.ca_file = get("ca-file");
        if (std::ifstream f(cfg.ep.tls_opts.ca_file); !f)
            return usage_error("--ca-file: cannot read '" + cfg.ep.tls_opts.ca_file + "': " + std::strerror(errno));
    }
    if (has("server-name")) cfg.ep.tls_opts.server_name = get("server-name");
    cfg.insecure = has("insecure-skip-verify");
    cfg.ep.tls_opts.verify = !cfg.insecure;
    if (cfg.insecure && has("ca-file"))
        return usage_error("--insecure-skip-verify and --ca-file contradict each other: choose one");
    if (has("helo")) cfg.helo = get("helo");
    if (has("timeout")) {
        auto d = parse_duration(o.find("timeout")->second);
        if (!d) return usage_error("--timeout expects seconds (e.g. 30) or milliseconds (e.g. 500ms), got '" +
                                   get("timeout") + "'");
        cfg.timeout = *d;
    }

    if (has("password-file") && has("password-env"))
        return usage_error("--password-file and --password-env: give one of them, not both");
    if (has("user")) cfg.user = get("user");
    if (has("user") && cfg.user.empty()) return usage_error("--user must not be empty");
    if (!cfg.user.empty() && !has("password-file") && !has("password-env"))
        return usage_error("--user needs a password: --password-file FILE or --password-env VAR");
    if (cfg.user.empty() && (has("password-file") || has("password-env")))
        return usage_error(std::string("--") + (has("password-file") ? "password-file" : "password-env") +
                           " needs --user");
    auto password = read_password(o, error);
    if (!password) return usage_error(error);
    cfg.password = std::move(*password);
    cfg.allow_plaintext_auth = has("allow-plaintext-auth");
    if (!cfg.user.empty() && cfg.ep.tls == tls_mode::none && !cfg.allow_plaintext_auth)
        return usage_error("--user with --tls none would send the password in clear text: use --tls starttls or "
                           "--tls implicit, or add --allow-plaintext-auth");

    if (has("from")) cfg.from = get("from");
    if (cfg.to.empty()) return usage_error("--to is required (repeat it for several recipients)");
    const std::pair<std::string_view, std::size_t*> numeric[] = {
        {"size", &cfg.size}, {"count", &cfg.count}, {"concurrency", &cfg.concurrency},
        {"pool-size", &cfg.pool_size}, {"max-overflow", &cfg.max_overflow}};
    for (auto [name, field] : numeric) {
        auto it = o.find(name);
        if (it == o.end()) continue;
        const std::size_t min = (name == "max-overflow" || name == "size") ? 0 : 1;
        auto v = parse_unsigned<std::size_t>(it->second, min, name == "size" ? 100'000'000 : 1'000'000);
        if (!v)
            return usage_error("--" + std::string(name) + " expects " +
                               (min == 0 ? "a non-negative" : "a positive") + " integer, got '" +
                               std::string(it->second) + "'");
        *field = *v;
    }
    cfg.no_pool = has("no-pool");
    if (cfg.no_pool && (has("pool-size") || has("max-overflow")))
        return usage_error(std::string("--no-pool and --") + (has("pool-size") ? "pool-size" : "max-overflow") +
                           " contradict each other: --no-pool opens a new session per message");
    if (cfg.pool_size == 0) cfg.pool_size = cfg.concurrency;
    cfg.json = has("json");
    return std::nullopt;
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

// ---- running ----------------------------------------------------------------------------

struct outcome {
    bool sent = false;
    std::string reason;                 // for a failure: "stage: what (server reply)"
    std::vector<std::string> refused;   // recipients refused in a message that was sent
};

struct run_result {
    std::size_t sent = 0, failed = 0;
    std::map<std::string, std::size_t> reasons;
    std::map<std::string, std::size_t> refused;  // "addr: reply" of refused recipients of sent messages
    double seconds = 0;
    std::vector<double> latencies_us;

    double rate() const { return seconds > 0 ? static_cast<double>(sent) / seconds : 0; }
    double pct(double q) {
        if (latencies_us.empty()) return 0;
        std::sort(latencies_us.begin(), latencies_us.end());
        return latencies_us[static_cast<std::size_t>(q * static_cast<double>(latencies_us.size() - 1))];
    }
};

std::string describe_reply(const smtp::send_result& r) {
    if (!r.last_reply) return {};
    std::string text = r.last_reply->to_string();
    if (text.size() > 120) text = text.substr(0, 117) + "...";
    return " (server: " + text + ")";
}

/// The recipients a sent message did not reach: "<addr>: 550 5.1.1 text".
std::vector<std::string> refused_recipients(const smtp::send_result& r) {
    std::vector<std::string> out;
    if (!r.sent) return out;
    for (const auto& rc : r.recipients) {
        if (rc.accepted()) continue;
        std::string s = "<" + rc.address + ">: " + std::to_string(rc.code);
        // The text usually repeats the enhanced status code; add it only when it does not.
        if (rc.status && !rc.text.starts_with(rc.status->to_string())) s += " " + rc.status->to_string();
        if (!rc.text.empty()) s += " " + rc.text.substr(0, 100);
        out.push_back(std::move(s));
    }
    return out;
}

std::string failure_reason(const smtp::send_result& r) {
    std::string s = (r.stage.empty() ? std::string("send") : r.stage) + ": " + r.ec.message() + describe_reply(r);
    if (!r.detail.empty()) s += "; " + r.detail;
    return s;
}

/// Runs cfg.count sends with cfg.concurrency coroutines on `ioc`; `op` sends one and says how
/// it went, setting `accepted_at` when the server accepted the message (the latency).
template <class Op>
run_result drive(asio::io_context& ioc, const send_config& cfg, Op op) {
    run_result r;
    r.latencies_us.reserve(cfg.count);
    std::size_t next = 0, done = 0, running = cfg.concurrency;
    const bool progress = !cfg.json && isatty(STDERR_FILENO);
    const auto t0 = clock_type::now();
    auto last_progress = t0;
    auto worker = [&]() -> asio::awaitable<void> {
        while (next < cfg.count) {
            ++next;
            const auto start = clock_type::now();
            clock_type::time_point accepted_at = start;
            outcome out;
            try {
                out = co_await op(accepted_at);
            } catch (const std::exception& e) {
                out.reason = std::string("unexpected exception: ") + e.what();
            }
            ++done;
            for (auto& why : out.refused) ++r.refused[std::move(why)];
            if (out.sent) {
                ++r.sent;
                r.latencies_us.push_back(std::chrono::duration<double, std::micro>(accepted_at - start).count());
            } else {
                ++r.failed;
                ++r.reasons[out.reason];
            }
            if (progress && accepted_at - last_progress > std::chrono::milliseconds(250)) {
                last_progress = accepted_at;
                std::fprintf(stderr, "\r  %zu/%zu sent or failed", done, cfg.count);
            }
        }
        if (--running == 0) ioc.stop();  // a pool's idle workers would keep it running
    };
    for (std::size_t i = 0; i < cfg.concurrency; ++i) asio::co_spawn(ioc, worker(), asio::detached);
    ioc.restart();
    ioc.run();
    r.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    if (progress) std::fprintf(stderr, "\r%50s\r", "");
    return r;
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
    std::string s = stage + ": " + ec.message();
    if (stage == "handshake") {
        const std::string detail = proto.last_handshake_failure();
        if (!detail.empty()) s += " (" + detail + ")";
    }
    return s;
}

std::string hint_for(const send_config& cfg, const std::error_code& ec) {
    if (ec == errc::tls_verify_failed || ec == errc::endpoint_down_tls) {
        if (cfg.ep.tls_opts.ca_file.empty())
            return "the certificate did not verify against the system's CAs: give --ca-file with the CA that "
                   "signed it (and --server-name if it names another host)";
        return "the certificate did not verify against --ca-file, or does not name '" +
               (cfg.ep.tls_opts.server_name.empty() ? cfg.ep.host : cfg.ep.tls_opts.server_name) +
               "' (see --server-name)";
    }
    if (ec == smtp::errc::auth_failed) return "the server refused the user name or password";
    if (ec == smtp::errc::starttls_unavailable) return "the server does not offer STARTTLS: try --tls implicit";
    if (ec == asio::error::connection_refused) return "nothing listens there";
    return {};
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        const auto u = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (u < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out + '"';
}

}  // namespace

int smtp_send_main(std::span<const std::string_view> args) {
    send_config cfg;
    if (auto stop = parse_config(args, cfg)) return *stop;
    const redactor redact(cfg.user, cfg.password);
    auto& out = std::cout;

    smtp::client_options copts;
    copts.helo_name = cfg.helo;
    copts.cred.user = cfg.user;
    copts.cred.secret = cfg.password;
    copts.allow_plaintext_auth = cfg.allow_plaintext_auth;
    copts.command_timeout = cfg.timeout;
    copts.data_timeout = cfg.timeout;
    pool_options po;
    po.size = cfg.pool_size;
    po.max_overflow = cfg.max_overflow;
    po.checkout_timeout = cfg.timeout;
    po.connect_timeout = cfg.timeout;
    po.handshake_timeout = cfg.timeout;
    po.overflow_ttl = std::chrono::seconds(1);  // a burst does not churn its overflow sessions
    try {
        copts.validate();
        po.validate();
    } catch (const config_error& e) {
        return usage_error(redact(std::string("invalid setting: ") + e.what()));
    }
    if (cfg.insecure)
        std::cerr << "\n"
                     "  ********************************************************************\n"
                     "  WARNING: --insecure-skip-verify: the server's certificate is NOT\n"
                     "  verified. Anyone between here and " << cfg.ep.host << " can pose as the server\n"
                     "  and read the password and every message. Use --ca-file instead.\n"
                     "  ********************************************************************\n\n";

    std::shared_ptr<asio::ssl::context> tls_ctx;
    if (cfg.ep.tls != tls_mode::none) {
        try {
            tls_ctx = make_client_tls_context(cfg.ep.tls_opts);
        } catch (const config_error& e) {
            return usage_error(std::string("TLS setup failed: ") + e.what());
        }
    }

    smtp::message msg;
    msg.from = cfg.from;
    msg.to = cfg.to;
    msg.subject = "netpool smtp-send test";
    msg.text = make_body(cfg.size);
    smtp::envelope env;
    std::string content;
    try {
        env = msg.make_envelope();
        content = msg.render();
    } catch (const std::exception& e) {
        return usage_error(std::string("cannot build the message: ") + e.what());
    }

    const smtp::adapter proto(copts);
    asio::io_context ioc;
    std::uint64_t next_id = 1;

    // Preflight: one session, so that an unusable server is reported once, with its cause,
    // instead of as COUNT identical failures.
    {
        std::error_code ec;
        std::string stage;
        std::string caps;
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                connection c(ioc.get_executor(), cfg.ep, tls_ctx.get(), next_id++);
                ec = co_await open_session(proto, c, cfg.timeout, stage);
                if (!ec) {
                    if (const auto* k = smtp::adapter::session_capabilities(c)) {
                        caps = k->esmtp ? "ESMTP" : "SMTP (HELO)";
                        if (k->pipelining) caps += ", PIPELINING";
                        if (k->size) caps += ", SIZE " + std::to_string(*k->size);
                        if (!k->auth.empty()) {
                            caps += ", AUTH";
                            for (const auto& m : k->auth) caps += " " + m;
                        }
                    }
                    co_await with_timeout(quit(proto, c), cfg.timeout, make_error_code(errc::operation_timeout));
                }
                c.io().close();
            },
            asio::detached);
        ioc.run();
        if (ec) {
            std::string msg_text = "netpool smtp-send: cannot use " + cfg.ep.to_string() + ": " +
                                   terminal_safe(redact(handshake_failure(proto, stage, ec)));
            if (const auto hint = hint_for(cfg, ec); !hint.empty()) msg_text += "\n  hint: " + hint;
            std::cerr << redact(msg_text) << "\n";
            return exit_failure;
        }
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

    run_result r;
    std::optional<pool_stats> stats;
    std::size_t warm = 0, warm_failed = 0;
    double warm_seconds = 0;
    if (cfg.no_pool) {
        r = drive(ioc, cfg, [&](clock_type::time_point& accepted_at) -> asio::awaitable<outcome> {
            connection c(ioc.get_executor(), cfg.ep, tls_ctx.get(), next_id++);
            std::string stage;
            outcome o;
            auto ec = co_await open_session(proto, c, cfg.timeout, stage);
            if (ec) {
                o.reason = handshake_failure(proto, stage, ec);
            } else {
                const auto res = co_await proto.send(c, env, content);
                accepted_at = clock_type::now();
                o.sent = res.sent;
                if (!res.sent) o.reason = failure_reason(res);
                o.refused = refused_recipients(res);
                co_await with_timeout(quit(proto, c), cfg.timeout, make_error_code(errc::operation_timeout));
            }
            c.io().close();
            co_return o;
        });
    } else {
        pool p(ioc.get_executor(), cfg.ep, proto, po, "smtp-send");
        // Open the sessions the concurrency can use before timing: C checkouts held at once.
        warm = std::min(cfg.concurrency, cfg.pool_size + cfg.max_overflow);
        {
            const auto w0 = clock_type::now();
            std::size_t holding = 0, finished = 0;
            asio::steady_timer all_held(ioc, clock_type::time_point::max());
            for (std::size_t i = 0; i < warm; ++i)
                asio::co_spawn(
                    ioc,
                    [&]() -> asio::awaitable<void> {
                        auto [ec, l] = co_await p.checkout();
                        if (ec) ++warm_failed;
                        else ++holding;
                        if (holding + warm_failed == warm) all_held.cancel();
                        else co_await all_held.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
                        l.release();
                        if (++finished == warm) ioc.stop();
                    },
                    asio::detached);
            ioc.restart();
            ioc.run();
            warm_seconds = std::chrono::duration<double>(clock_type::now() - w0).count();
        }
        r = drive(ioc, cfg, [&](clock_type::time_point& accepted_at) -> asio::awaitable<outcome> {
            outcome o;
            auto [ec, l] = co_await p.checkout();
            if (ec) {
                o.reason = "checkout: " + ec.message();
                if (ec == condition::endpoint_down) {
                    o.reason += "; last cause: " + p.last_failure().message();
                    if (const auto d = proto.last_handshake_failure(); !d.empty()) o.reason += " (" + d + ")";
                }
                co_return o;
            }
            const auto res = co_await proto.send(*l, env, content);
            accepted_at = clock_type::now();
            o.sent = res.sent;
            o.refused = refused_recipients(res);
            if (!res.sent) {
                o.reason = failure_reason(res);
                if (res.discard_connection()) l.discard();
            }
            co_return o;
        });
        stats = p.stats();
        bool drained = false;
        p.async_drain(std::chrono::seconds(2), [&](std::error_code) { drained = true; });
        ioc.restart();
        const auto until = clock_type::now() + std::chrono::seconds(5);
        while (!drained && clock_type::now() < until) ioc.run_for(std::chrono::milliseconds(50));
    }

    const auto by_count = [](const std::map<std::string, std::size_t>& m) {
        std::vector<std::pair<std::string, std::size_t>> v(m.begin(), m.end());
        std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
        return v;
    };
    const auto reasons = by_count(r.reasons);
    const auto refused = by_count(r.refused);

    if (cfg.json) {
        std::ostringstream j;
        char buf[512];
        std::snprintf(buf, sizeof buf,
                      "{\"server\":%s,\"mode\":\"%s\",\"count\":%zu,\"concurrency\":%zu,\"message_bytes\":%zu,"
                      "\"sent\":%zu,\"failed\":%zu,\"seconds\":%.6f,\"messages_per_s\":%.1f,"
                      "\"latency_us\":{\"p50\":%.1f,\"p95\":%.1f,\"p99\":%.1f}",
                      json_string(cfg.ep.to_string()).c_str(), cfg.no_pool ? "no_pool" : "pooled", cfg.count,
                      cfg.concurrency, content.size(), r.sent, r.failed, r.seconds, r.rate(), r.pct(0.5),
                      r.pct(0.95), r.pct(0.99));
        j << buf << ",\"failures\":[";
        for (std::size_t i = 0; i < reasons.size(); ++i)
            j << (i ? "," : "") << "{\"reason\":" << json_string(redact(reasons[i].first)) << ",\"count\":" << reasons[i].second
              << "}";
        j << "],\"refused_recipients\":[";
        for (std::size_t i = 0; i < refused.size(); ++i)
            j << (i ? "," : "") << "{\"reply\":" << json_string(redact(refused[i].first)) << ",\"count\":" << refused[i].second
              << "}";
        j << "]";
        if (stats) {
            j << ",\"pool\":{\"size\":" << cfg.pool_size << ",\"max_overflow\":" << cfg.max_overflow
              << ",\"warm_sessions\":" << warm << ",\"warm_failed\":" << warm_failed << ",\"warm_seconds\":"
              << warm_seconds << ",\"stats\":" << to_json(*stats) << "}";
        }
        j << "}";
        out << redact(j.str()) << "\n";
    } else {
        std::ostringstream t;
        char buf[512];
        std::snprintf(buf, sizeof buf, "sent %zu, failed %zu in %.3f s: %.0f messages/s\n", r.sent, r.failed,
                      r.seconds, r.rate());
        t << buf;
        if (r.sent > 0) {
            std::snprintf(buf, sizeof buf,
                          "latency (to the server's 250 for the message, %s included): p50 %.1f ms, p95 %.1f ms, "
                          "p99 %.1f ms\n",
                          cfg.no_pool ? "connect" : "checkout", r.pct(0.5) / 1e3, r.pct(0.95) / 1e3, r.pct(0.99) / 1e3);
            t << buf;
        }
        if (!reasons.empty()) {
            t << "failures:\n";
            for (const auto& [why, n] : reasons) t << "  " << n << " x " << terminal_safe(redact(why)) << "\n";
        }
        if (!refused.empty()) {
            t << "recipients refused in messages that were sent:\n";
            for (const auto& [why, n] : refused) t << "  " << n << " x " << terminal_safe(redact(why)) << "\n";
        }
        if (stats) {
            const auto& s = *stats;
            const auto co = [&](checkout_result k) { return static_cast<unsigned long long>(s.checkouts[static_cast<int>(k)]); };
            const auto cl = [&](close_reason k) { return static_cast<unsigned long long>(s.closes[static_cast<int>(k)]); };
            std::snprintf(buf, sizeof buf,
                          "pool: %zu of %zu sessions opened in %.1f ms before timing%s\n"
                          "  connects %llu ok, %llu failed; checkouts %llu ok, %llu timed out, %llu endpoint down\n"
                          "  closes: broken %llu, overflow %llu, health %llu; checkout wait p50 <= %.0f us, p99 <= %.0f us\n"
                          "  at the end: %zu idle, %zu leased, %zu connecting%s\n",
                          warm - warm_failed, warm, warm_seconds * 1e3, warm_failed ? " (some FAILED)" : "",
                          static_cast<unsigned long long>(s.connects_ok),
                          static_cast<unsigned long long>(s.connects_failed), co(checkout_result::ok),
                          co(checkout_result::timeout), co(checkout_result::endpoint_down), cl(close_reason::broken),
                          cl(close_reason::overflow), cl(close_reason::health), s.checkout_wait.quantile(0.5) * 1e6,
                          s.checkout_wait.quantile(0.99) * 1e6, s.idle, s.leased, s.connecting,
                          s.endpoint_down ? "; endpoint DOWN" : "");
            t << buf;
        }
        out << redact(t.str());
    }
    return r.failed == 0 ? exit_ok : exit_failure;
}

}  // namespace netpool::cli
