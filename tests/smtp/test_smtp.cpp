// The SMTP mailer end to end against real servers on loopback, each in its own process:
// aiosmtpd (tests/servers/smtp_server.py: plain, STARTTLS, implicit TLS, AUTH PLAIN/LOGIN,
// every accepted message recorded), Postfix's smtp-sink, and a scripted misbehaving server
// (tests/servers/bad_smtp_server.py). Certificates come from a throwaway CA (test::certs()).
#include "../integration/support.hpp"
#include "servers.hpp"

#include <netpool/netpool.hpp>
#include <netpool/smtp/error.hpp>
#include <netpool/smtp/mailer.hpp>
#include <netpool/smtp/message.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <signal.h>
#include <unistd.h>

using namespace netpool;
using namespace std::chrono_literals;
using asio::awaitable;
namespace fs = std::filesystem;

namespace {

const std::string python = "/usr/bin/python3";
const std::string user = "mailer@test";
// Distinctive, so that a leak into any message or log is easy to find.
const std::string password = "S3cret-Pa55-netpool-xyzzy";
const std::string wrong_password = "Wr0ng-Pa55-netpool-plugh";

std::string script(const std::string& name) { return test::source_dir() + "/tests/servers/" + name; }

/// A fresh directory under the test's temp dir.
std::string new_dir(const std::string& label) {
    static std::atomic<int> n{0};
    const fs::path p = fs::path(test::temp_dir()) / (label + '-' + std::to_string(++n));
    fs::create_directories(p);
    return p.string();
}

std::string password_file(const std::string& secret) {
    const std::string path = new_dir("pw") + "/password";
    std::ofstream(path) << secret << '\n';
    return path;
}

// --- aiosmtpd ---------------------------------------------------------------------------

struct aiosmtpd_options {
    std::string mode = "plain";  // plain | starttls | implicit
    bool auth = false;
    bool require_starttls = false;
    bool wrong_name_cert = false;
    std::uint64_t max_size = 0;
};

/// An aiosmtpd record directory's index (one JSON object per accepted message); each run of
/// a restarted server appends to it.
struct aiosmtpd_reader {
    std::string dir;
    std::vector<nlohmann::json> jsonl(const std::string& name) const {
        std::vector<nlohmann::json> out;
        std::istringstream in(test::read_file(dir + '/' + name));
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) out.push_back(nlohmann::json::parse(line));
        return out;
    }
    std::vector<nlohmann::json> index() const { return jsonl("index.jsonl"); }
};

/// aiosmtpd in a child process, recording into its own directory.
struct aiosmtpd {
    std::string dir = new_dir("aiosmtpd");
    test::child_process proc;

    explicit aiosmtpd(const aiosmtpd_options& o = {}) : proc(args(o, dir), "aiosmtpd-" + o.mode) {}

    static std::vector<std::string> args(const aiosmtpd_options& o, const std::string& dir) {
        std::vector<std::string> a{python, script("smtp_server.py"), "--mode", o.mode, "--port", "0", "--record", dir};
        if (o.mode != "plain") {
            const auto& c = test::certs();
            a.insert(a.end(), {"--cert", o.wrong_name_cert ? c.wrong_name_cert : c.server_cert, "--key",
                               o.wrong_name_cert ? c.wrong_name_key : c.server_key});
        }
        if (o.auth) a.insert(a.end(), {"--user", user, "--password-file", password_file(password)});
        if (o.require_starttls) a.push_back("--require-starttls");
        if (o.max_size > 0) a.insert(a.end(), {"--max-size", std::to_string(o.max_size)});
        return a;
    }

    std::uint16_t port() const { return proc.port(); }

    std::vector<nlohmann::json> index() const { return aiosmtpd_reader{dir}.index(); }
    std::vector<nlohmann::json> auths() const { return aiosmtpd_reader{dir}.jsonl("auth.jsonl"); }
    std::string message(int n) const { return test::read_file(dir + '/' + std::to_string(n) + ".eml"); }
    int connections() const {
        const auto t = test::read_file(dir + "/connections");
        return t.empty() ? 0 : std::stoi(t);
    }
};

// --- the scripted misbehaving server ------------------------------------------------------

struct bad_server {
    std::string dir = new_dir("bad");
    std::string stats_path = dir + "/stats.json";
    test::child_process proc;

    explicit bad_server(const std::string& scenario, bool tls = false)
        : proc(args(scenario, tls, stats_path), "bad-" + scenario) {}

    static std::vector<std::string> args(const std::string& scenario, bool tls, const std::string& stats) {
        std::vector<std::string> a{python, script("bad_smtp_server.py"), "--scenario", scenario, "--port", "0",
                                   "--stats", stats};
        if (tls) a.insert(a.end(), {"--cert", test::certs().server_cert, "--key", test::certs().server_key});
        return a;
    }

    std::uint16_t port() const { return proc.port(); }
    nlohmann::json stats() const {
        const auto text = test::read_file(stats_path);
        return text.empty() ? nlohmann::json::object() : nlohmann::json::parse(text);
    }
    int counter(const char* key) const { return stats().value(key, 0); }
    std::vector<std::string> commands() const { return stats().value("commands", std::vector<std::string>{}); }
    /// Commands with this verb the server received (in any session).
    int count_verb(const std::string& verb) const {
        int n = 0;
        for (const auto& c : commands()) {
            std::istringstream in(c);
            std::string conn, v;
            in >> conn >> v;
            if (v == verb) ++n;
        }
        return n;
    }
};

// --- the client side ----------------------------------------------------------------------

/// Fast supervision so that failures show within a test's guard.
pool_options quick_pool(std::size_t size, std::size_t overflow) {
    pool_options o;
    o.size = size;
    o.max_overflow = overflow;
    o.checkout_timeout = 10s;
    o.connect_timeout = 3s;
    o.handshake_timeout = 5s;
    o.backoff_initial = 10ms;
    o.backoff_max = 50ms;
    o.max_restarts = 5;
    o.restart_period = 10s;
    o.down_cooldown = 200ms;
    o.health_check_after_idle = 0ms;
    return o;
}

smtp::account account_for(std::uint16_t port, tls_mode tls = tls_mode::none, bool with_auth = false,
                           const std::string& secret = password) {
    smtp::account a;
    a.server.host = "127.0.0.1";
    a.server.port = port;
    a.server.tls = tls;
    if (tls != tls_mode::none) {
        a.server.tls_opts.ca_file = test::certs().ca_cert;
        a.server.tls_opts.server_name = "localhost";
    }
    a.client.helo_name = "client.test";
    if (with_auth) a.client.cred = credentials{user, secret};
    a.client.command_timeout = 5s;
    a.client.data_timeout = 10s;
    a.pool = quick_pool(2, 2);
    return a;
}

/// An io_context on its own threads, a registry on it and a mailer over the registry.
struct harness {
    test::io_threads io{2};
    registry reg{io.executor()};
    smtp::mailer mail{reg};

    pool_stats total() const {
        pool_stats t;
        for (const auto& s : reg.stats()) {
            for (std::size_t i = 0; i < t.closes.size(); ++i) t.closes[i] += s.closes[i];
            for (std::size_t i = 0; i < t.checkouts.size(); ++i) t.checkouts[i] += s.checkouts[i];
            t.connects_ok += s.connects_ok;
            t.connects_failed += s.connects_failed;
            t.idle += s.idle;
            t.leased += s.leased;
            t.endpoint_down = t.endpoint_down || s.endpoint_down;
        }
        return t;
    }
};

// Parameters by value: the coroutine frame owns them (a test that fails on its guard leaves).
awaitable<smtp::send_result> send_raw(smtp::mailer& m, smtp::account a, smtp::envelope e, std::string raw) {
    co_return co_await m.send(a, e, std::move(raw));
}
awaitable<smtp::send_result> send_message(smtp::mailer& m, smtp::account a, smtp::message msg) {
    co_return co_await m.send(a, msg);
}

smtp::send_result send(harness& h, const smtp::account& a, const smtp::envelope& e, const std::string& raw,
                       std::chrono::milliseconds guard = 20s) {
    return test::run_on(h.io.executor(), send_raw(h.mail, a, e, raw), guard);
}

smtp::envelope env_to(std::vector<std::string> rcpts, std::string from = "sender@test") {
    smtp::envelope e;
    e.mail_from = std::move(from);
    e.rcpt_to = std::move(rcpts);
    return e;
}

std::string simple_message(const std::string& subject, const std::string& body = "Hello.\r\n") {
    return "From: sender@test\r\nTo: rcpt@test\r\nSubject: " + subject + "\r\nMessage-ID: <" + subject +
           "@netpool.test>\r\n\r\n" + body;
}

/// What a server sees after DATA transparency is undone: every bare CR and bare LF becomes
/// CRLF, and the content ends with CRLF. Written independently of smtp::encode_data.
std::string expected_content(const std::string& raw) {
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const char c = raw[i];
        if (c == '\r') {
            out += "\r\n";
            if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
        } else if (c == '\n') {
            out += "\r\n";
        } else {
            out += c;
        }
    }
    if (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0) out += "\r\n";
    return out;
}

/// Every text a failed send produces, for the "no credentials in errors" checks.
std::string all_text(const smtp::send_result& r) {
    std::string t = r.to_string() + '\n' + r.ec.message() + '\n' + r.stage + '\n' + r.detail;
    if (r.last_reply) t += '\n' + r.last_reply->to_string();
    for (const auto& rr : r.recipients) t += '\n' + rr.text;
    return t;
}

void check_no_secret(const std::string& text) {
    CHECK_MESSAGE(text.find(password) == std::string::npos, "the password leaked into: " << text);
    CHECK_MESSAGE(text.find(wrong_password) == std::string::npos, "the password leaked into: " << text);
}

/// The body of the byte-exactness tests: transparency and line-ending cases.
std::string tricky_body(int i) {
    std::string b = "Message " + std::to_string(i) + " for netpool.\r\n";
    switch (i % 8) {
        case 0: b += ".a line starting with a dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n"; break;
        case 1: b += "bare LF here\nand here\nend\r\n"; break;                  // bare LF -> CRLF
        case 2: b += "no final line end"; break;                              // CRLF appended
        case 3: b += "UTF-8: gr\xc3\xbc\xc3\x9f" "e, \xe2\x82\xac, \xf0\x9f\x93\xa7\r\n"; break;
        case 4: b += ".\r\n"; break;                                          // ends with a lone dot line
        case 5: b += "bare CR here\rthen text\r\n"; break;                      // bare CR -> CRLF
        case 6:
            for (int l = 0; l < 600; ++l) b += std::string(76, static_cast<char>('a' + l % 26)) + "\r\n";  // ~47 KB
            break;
        default: b += "\r\n\r\n.\n..\n"; break;                                // empty lines, dots after LF
    }
    return b;
}

std::size_t idx(close_reason r) { return static_cast<std::size_t>(r); }
std::size_t idx(checkout_result r) { return static_cast<std::size_t>(r); }

/// Runs f(0) .. f(n-1) concurrently; cancelling the whole cancels each.
template <class F> awaitable<void> in_parallel(std::size_t lo, std::size_t hi, F& f) {
    using namespace asio::experimental::awaitable_operators;
    if (hi - lo == 1) {
        co_await f(lo);
        co_return;
    }
    const std::size_t mid = lo + (hi - lo) / 2;
    co_await (in_parallel(lo, mid, f) && in_parallel(mid, hi, f));
}

/// Checks that the server recorded exactly `expected` (sha256 -> raw sent) with these envelopes.
void check_recorded(const aiosmtpd& srv, const std::map<std::string, std::string>& expected_by_sha,
                    const smtp::envelope& env) {
    const auto index = srv.index();
    CHECK(index.size() == expected_by_sha.size());
    std::set<std::string> seen;
    for (const auto& entry : index) {
        const std::string sha = entry.at("sha256");
        INFO("message " << entry.at("n").get<int>() << " sha256 " << sha);
        CHECK_MESSAGE(expected_by_sha.count(sha) == 1, "a message arrived that was not sent (or was altered)");
        CHECK_MESSAGE(seen.insert(sha).second, "a message arrived twice");
        CHECK(entry.at("mail_from").get<std::string>() == env.mail_from);
        CHECK(entry.at("rcpt_tos").get<std::vector<std::string>>() == env.rcpt_to);
        // The recorder's own file says the same as its index, byte for byte.
        const std::string file = srv.message(entry.at("n").get<int>());
        CHECK(test::sha256_hex(file) == sha);
        CHECK(file.size() == entry.at("size").get<std::size_t>());
    }
}

}  // namespace

TEST_SUITE("smtp") {

// --- aiosmtpd: plain, STARTTLS + AUTH, implicit TLS -------------------------------------------

TEST_CASE("aiosmtpd plain: a raw message arrives byte-identical, then the server exits cleanly") {
    aiosmtpd srv;
    harness h;
    const auto a = account_for(srv.port());
    const std::string raw = simple_message("plain-1", tricky_body(0) + tricky_body(1));
    const auto e = env_to({"rcpt@test", "second@test"});
    const auto r = send(h, a, e, raw);
    INFO(r.to_string());
    CHECK(r.sent);
    CHECK_FALSE(r.ec);
    REQUIRE(srv.index().size() == 1);
    CHECK(srv.message(1) == expected_content(raw));
    CHECK(srv.index()[0].at("tls") == false);
    check_recorded(srv, {{test::sha256_hex(expected_content(raw)), raw}}, e);
    REQUIRE(r.recipients.size() == 2);
    CHECK(r.recipients[0].accepted());
    CHECK(r.recipients[1].accepted());
    CHECK(srv.proc.stop() == 0);  // SIGTERM: a clean exit
}

TEST_CASE("aiosmtpd plain: message builder (Bcc only in the envelope, RFC 2047 subject, dot lines)") {
    aiosmtpd srv;
    harness h;
    smtp::message m;
    m.from = "Ann Sender <ann@test>";
    m.to = {"Bob <bob@test>"};
    m.cc = {"carol@test"};
    m.bcc = {"hidden@test"};
    m.subject = "Gr\xc3\xbc\xc3\x9f" "e aus netpool";
    m.text = "first line\n.dot line\nlast line";
    const auto r = test::run_on(h.io.executor(), send_message(h.mail, account_for(srv.port()), m), 20s);
    INFO(r.to_string());
    CHECK(r.sent);
    const auto index = srv.index();
    REQUIRE(index.size() == 1);
    CHECK(index[0].at("mail_from") == "ann@test");
    CHECK(index[0].at("rcpt_tos").get<std::vector<std::string>>() ==
          std::vector<std::string>{"bob@test", "carol@test", "hidden@test"});
    const std::string got = srv.message(1);
    CHECK(got.find("hidden@test") == std::string::npos);           // Bcc never in the headers
    CHECK(got.find("Subject: =?UTF-8?B?") != std::string::npos);  // encoded word
    CHECK(got.find("\r\n\r\nfirst line\r\n.dot line\r\nlast line\r\n") != std::string::npos);
    CHECK(got.find("\n.dot line") != std::string::npos);  // unstuffed again by the server: exact
    CHECK(got.find("\r\n..dot line") == std::string::npos);
}

TEST_CASE("aiosmtpd STARTTLS + AUTH PLAIN (TLS required before AUTH and MAIL)" * test::needs_tls()) {
    aiosmtpd_options o;
    o.mode = "starttls";
    o.auth = true;
    o.require_starttls = true;
    aiosmtpd srv(o);
    harness h;
    auto a = account_for(srv.port(), tls_mode::starttls, true);
    a.client.mechanisms = {"PLAIN"};
    const std::string raw = simple_message("starttls-plain", tricky_body(0) + tricky_body(1));
    const auto r = send(h, a, env_to({"rcpt@test"}), raw);
    INFO(r.to_string());
    CHECK(r.sent);
    check_no_secret(all_text(r));
    const auto index = srv.index();
    REQUIRE(index.size() == 1);
    CHECK(index[0].at("tls") == true);
    CHECK(srv.message(1) == expected_content(raw));
    // Which mechanism reached the server, and over TLS.
    const auto auths = srv.auths();
    REQUIRE_FALSE(auths.empty());
    for (const auto& e : auths) {
        CHECK(e.at("mechanism") == "PLAIN");
        CHECK(e.at("success") == true);
        CHECK(e.at("tls") == true);
    }
}

TEST_CASE("aiosmtpd STARTTLS: AUTH LOGIN when it is the only mechanism asked for" * test::needs_tls()) {
    aiosmtpd_options o;
    o.mode = "starttls";
    o.auth = true;
    o.require_starttls = true;
    aiosmtpd srv(o);
    harness h;
    auto a = account_for(srv.port(), tls_mode::starttls, true);
    a.client.mechanisms = {"LOGIN"};
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("login-only"));
    INFO(r.to_string());
    CHECK(r.sent);
    const auto auths = srv.auths();
    REQUIRE_FALSE(auths.empty());
    for (const auto& e : auths) {
        CHECK(e.at("mechanism") == "LOGIN");
        CHECK(e.at("success") == true);
        CHECK(e.at("tls") == true);
    }
    CHECK(srv.index().size() == 1);
}

TEST_CASE("aiosmtpd implicit TLS + AUTH" * test::needs_tls()) {
    aiosmtpd_options o;
    o.mode = "implicit";
    o.auth = true;
    aiosmtpd srv(o);
    harness h;
    const auto a = account_for(srv.port(), tls_mode::implicit, true);
    const std::string raw = simple_message("implicit", tricky_body(3) + tricky_body(0));
    const auto r = send(h, a, env_to({"rcpt@test"}), raw);
    INFO(r.to_string());
    CHECK(r.sent);
    REQUIRE(srv.index().size() == 1);
    CHECK(srv.index()[0].at("tls") == true);
    CHECK(srv.message(1) == expected_content(raw));
}

TEST_CASE("aiosmtpd: 200 messages, 20 concurrent senders, pool 4 + 8: all arrive byte-identical, once") {
    aiosmtpd srv;
    harness h;
    auto a = account_for(srv.port());
    a.pool = quick_pool(4, 8);
    const auto e = env_to({"rcpt@test", "other@test"});
    constexpr int senders = 20, per_sender = 10, total = senders * per_sender;

    std::vector<std::string> raws;
    std::map<std::string, std::string> by_sha;
    for (int i = 0; i < total; ++i) {
        raws.push_back(simple_message("bulk-" + std::to_string(i), tricky_body(i)));
        by_sha.emplace(test::sha256_hex(expected_content(raws.back())), raws.back());
    }
    REQUIRE(by_sha.size() == static_cast<std::size_t>(total));

    std::mutex mu;
    std::vector<std::string> failures;
    std::atomic<int> sent{0};
    auto sender = [&](std::size_t s) -> awaitable<void> {
        for (int k = 0; k < per_sender; ++k) {
            const auto& raw = raws[s * per_sender + static_cast<std::size_t>(k)];
            auto r = co_await h.mail.send(a, e, raw);
            if (r.sent && !r.ec) {
                ++sent;
            } else {
                std::lock_guard lk(mu);
                failures.push_back(r.to_string());
            }
        }
    };
    test::run_on(h.io.executor(), in_parallel(0, senders, sender), 180s);
    CHECK_MESSAGE(failures.empty(), failures.size() << " failed; first: " << (failures.empty() ? "" : failures[0]));
    CHECK(sent.load() == total);
    check_recorded(srv, by_sha, e);
    // Pooled: far fewer connections than messages (size + overflow, plus overflow churn).
    CHECK(srv.connections() >= 1);
    CHECK(srv.connections() <= 60);
    const auto s = h.total();
    CHECK(s.checkouts[idx(checkout_result::ok)] >= static_cast<std::uint64_t>(total));
    CHECK(s.leased == 0);
}

TEST_CASE("aiosmtpd SIZE: a message over the announced limit fails before it is sent; a small one goes") {
    aiosmtpd_options o;
    o.max_size = 2000;
    aiosmtpd srv(o);
    harness h;
    const auto a = account_for(srv.port());
    std::string big_body;  // 5,000 octets in lines of 100 (a line over 998 would be refused first)
    for (int i = 0; i < 50; ++i) big_body += std::string(98, 'x') + "\r\n";
    const auto big = send(h, a, env_to({"rcpt@test"}), simple_message("big", big_body));
    INFO(big.to_string());
    CHECK_FALSE(big.sent);
    CHECK(big.ec == smtp::errc::message_too_large);
    const auto small = send(h, a, env_to({"rcpt@test"}), simple_message("small"));
    CHECK(small.sent);
    CHECK(srv.index().size() == 1);
}

TEST_CASE("blocking send from plain threads (4 threads x 5 messages)") {
    aiosmtpd srv;
    harness h;
    const auto a = account_for(srv.port());
    const auto e = env_to({"rcpt@test"});
    std::atomic<int> ok{0};
    std::mutex mu;
    std::vector<std::string> failures;
    std::map<std::string, std::string> by_sha;
    std::vector<std::vector<std::string>> work(4);
    for (int t = 0; t < 4; ++t)
        for (int i = 0; i < 5; ++i) {
            work[static_cast<std::size_t>(t)].push_back(simple_message("blocking-" + std::to_string(t) + '-' +
                                                                       std::to_string(i), tricky_body(i)));
            by_sha.emplace(test::sha256_hex(expected_content(work[static_cast<std::size_t>(t)].back())),
                           work[static_cast<std::size_t>(t)].back());
        }
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (const auto& raw : work[static_cast<std::size_t>(t)]) {
                auto r = h.mail.send_blocking(a, e, raw);
                if (r.sent) {
                    ++ok;
                } else {
                    std::lock_guard lk(mu);
                    failures.push_back(r.to_string());
                }
            }
        });
    for (auto& t : threads) t.join();
    CHECK_MESSAGE(failures.empty(), (failures.empty() ? "" : failures[0]));
    CHECK(ok.load() == 20);
    check_recorded(srv, by_sha, e);
}

// --- Postfix smtp-sink ------------------------------------------------------------------------

TEST_CASE("smtp-sink (Postfix) receives every message sent through the mailer") {
    const std::string sink = "/usr/sbin/smtp-sink";
    REQUIRE_MESSAGE(::access(sink.c_str(), X_OK) == 0, sink << " is missing: install the postfix package");
    // smtp-sink runs as an unprivileged user when started as root: the dump directory must
    // be writable by it, and the per-process temp dir is private. A directory of its own:
    std::string tmpl = "/tmp/netpool-sink-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    const std::string dump_dir = tmpl;
    struct remove_dir {
        std::string p;
        ~remove_dir() {
            std::error_code ignored;
            fs::remove_all(p, ignored);
        }
    } cleanup{dump_dir};
    fs::permissions(dump_dir, fs::perms::all);

    const std::uint16_t port = test::free_port();
    std::vector<std::string> args{sink};
    if (::geteuid() == 0) args.insert(args.end(), {"-u", "nobody"});
    // -d: one file per mail transaction, named from the template plus a random suffix.
    args.insert(args.end(), {"-d", dump_dir + "/m.", "127.0.0.1:" + std::to_string(port), "1000"});
    test::child_process proc(args, "smtp-sink", false);
    REQUIRE_MESSAGE(test::wait_listening(port, 10s), "smtp-sink did not listen; stderr:\n" << proc.stderr_text());

    harness h;
    auto a = account_for(port);
    a.pool = quick_pool(4, 4);
    constexpr int total = 300;
    std::atomic<int> sent{0};
    std::vector<std::string> failures;
    std::mutex mu;
    const auto e = env_to({"sink@test"});  // (a braced string list inside a coroutine trips g++ 12)
    auto sender = [&](std::size_t s) -> awaitable<void> {
        for (int k = 0; k < total / 10; ++k) {
            auto r = co_await h.mail.send(a, e,
                                          simple_message("sink-" + std::to_string(s) + '-' + std::to_string(k)));
            if (r.sent) {
                ++sent;
            } else {
                std::lock_guard lk(mu);
                failures.push_back(r.to_string());
            }
        }
    };
    test::run_on(h.io.executor(), in_parallel(0, 10, sender), 120s);
    CHECK_MESSAGE(failures.empty(), (failures.empty() ? "" : failures[0]));
    CHECK(sent.load() == total);
    // Each dump is one transaction; its Subject says which message it was.
    const auto subjects = [&] {
        std::multiset<std::string> out;
        for (const auto& f : fs::recursive_directory_iterator(dump_dir)) {
            if (!f.is_regular_file()) continue;
            const std::string text = test::read_file(f.path().string());
            const auto at = text.find("\nSubject: ");
            out.insert(at == std::string::npos ? std::string("(none)")
                                               : text.substr(at + 10, text.find('\n', at + 1) - at - 10));
        }
        return out;
    };
    CHECK(test::wait_for([&] { return subjects().size() >= static_cast<std::size_t>(total); }, 10s));
    const auto got = subjects();
    CHECK(got.size() == static_cast<std::size_t>(total));
    CHECK(std::set<std::string>(got.begin(), got.end()).size() == static_cast<std::size_t>(total));
    CHECK(got.count("(none)") == 0);
}

// --- authentication failures ------------------------------------------------------------------

TEST_CASE("aiosmtpd STARTTLS: a wrong password is auth_failed with the server's reply, and no secret" *
          test::needs_tls()) {
    aiosmtpd_options o;
    o.mode = "starttls";
    o.auth = true;
    aiosmtpd srv(o);
    harness h;
    auto a = account_for(srv.port(), tls_mode::starttls, true, wrong_password);
    a.pool = quick_pool(1, 0);
    a.pool.max_restarts = 2;
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("wrong-password"));
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.stage == "checkout");
    CHECK_MESSAGE(r.ec == smtp::errc::auth_failed, "ec: " << r.ec.message());
    REQUIRE(r.last_reply.has_value());
    CHECK(r.last_reply->code == 535);
    CHECK_MESSAGE(r.detail.find("535") != std::string::npos, "detail: " << r.detail);
    check_no_secret(all_text(r));
    CHECK(srv.index().empty());
    for (const auto& e : srv.auths()) CHECK(e.at("success") == false);
}

TEST_CASE("auth_fail server, default pool and retry options: a refused password is sent once, then every send fails "
          "fast with the cause") {
    // Issue 15: a refused login was repeated (restart intensity, probes, the workers started
    // together), and servers lock accounts after a few failures.
    bad_server srv("auth_fail");
    harness h;
    auto a = account_for(srv.port(), tls_mode::none, true, wrong_password);
    a.client.allow_plaintext_auth = true;  // this server has no TLS
    a.pool = pool_options{};               // 10 + 10 workers, the default supervision
    std::vector<smtp::send_result> results;
    for (int i = 0; i < 25; ++i) results.push_back(send(h, a, env_to({"rcpt@test"}), simple_message("x")));
    for (const auto& r : results) {
        INFO(r.to_string());
        CHECK_FALSE(r.sent);
        CHECK(r.ec == smtp::errc::auth_failed);  // the cause, not just "endpoint down"
        CHECK(r.attempts == 0);                  // no transaction: the retries do not repeat it either
        check_no_secret(all_text(r));
    }
    CHECK(h.total().endpoint_down);
    INFO("connections " << srv.counter("connections") << ", AUTH " << srv.counter("auth"));
    CHECK(srv.counter("auth") == 1);
    CHECK(srv.counter("connections") == 1);
    CHECK(srv.counter("mail") == 0);
}

// --- STARTTLS problems ------------------------------------------------------------------------

TEST_CASE("STARTTLS required but not offered: starttls_unavailable, nothing sent in clear" * test::needs_tls()) {
    bad_server srv("ehlo_no_starttls");
    harness h;
    auto a = account_for(srv.port(), tls_mode::starttls, true);
    a.pool = quick_pool(1, 0);
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("no-starttls"));
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.ec == smtp::errc::starttls_unavailable);
    check_no_secret(all_text(r));
    CHECK(srv.count_verb("EHLO") >= 1);
    CHECK(srv.count_verb("AUTH") == 0);
    CHECK(srv.count_verb("MAIL") == 0);
    CHECK(srv.count_verb("RCPT") == 0);
    CHECK(srv.count_verb("DATA") == 0);
}

TEST_CASE("credentials without TLS and without allow_plaintext_auth: refused, no AUTH in clear") {
    bad_server srv("ehlo_no_starttls");
    harness h;
    auto a = account_for(srv.port(), tls_mode::none, true);
    a.pool = quick_pool(1, 0);
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("plaintext"));
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.ec == smtp::errc::plaintext_auth_refused);
    check_no_secret(all_text(r));
    CHECK(srv.count_verb("AUTH") == 0);
    CHECK(srv.count_verb("MAIL") == 0);
}

TEST_CASE("STARTTLS response injection is detected" * test::needs_tls()) {
    bad_server srv("starttls_injection", true);
    harness h;
    auto a = account_for(srv.port(), tls_mode::starttls);
    a.pool = quick_pool(1, 0);
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("injection"));
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.ec == smtp::errc::starttls_injection);
    CHECK(srv.count_verb("STARTTLS") >= 1);
    CHECK(srv.count_verb("MAIL") == 0);
}

TEST_CASE("TLS with a wrong host name fails verification (implicit and STARTTLS)" * test::needs_tls()) {
    SUBCASE("implicit") {
        aiosmtpd_options o;
        o.mode = "implicit";
        o.wrong_name_cert = true;
        aiosmtpd srv(o);
        harness h;
        auto a = account_for(srv.port(), tls_mode::implicit);
        a.pool = quick_pool(1, 0);
        const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("wrong-name"));
        INFO(r.to_string());
        CHECK_FALSE(r.sent);
        CHECK((r.ec == errc::tls_verify_failed || r.ec == errc::endpoint_down_tls));
        CHECK(srv.index().empty());
    }
    SUBCASE("STARTTLS, client expects another name") {
        aiosmtpd_options o;
        o.mode = "starttls";
        aiosmtpd srv(o);
        harness h;
        auto a = account_for(srv.port(), tls_mode::starttls);
        a.server.tls_opts.server_name = "mail.example.org";
        a.pool = quick_pool(1, 0);
        const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("wrong-name-2"));
        INFO(r.to_string());
        CHECK_FALSE(r.sent);
        CHECK((r.ec == errc::tls_verify_failed || r.ec == errc::endpoint_down_tls));
        CHECK(srv.index().empty());
    }
}

// --- the server misbehaves mid-session ---------------------------------------------------------

TEST_CASE("greeting 554: greeting_rejected") {
    bad_server srv("greeting_554");
    harness h;
    auto a = account_for(srv.port());
    a.pool = quick_pool(1, 0);
    a.pool.max_restarts = 2;
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("greeting"));
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.ec == smtp::errc::greeting_rejected);
    CHECK(srv.count_verb("MAIL") == 0);
}

TEST_CASE("421 after MAIL FROM with the default retry policy: sent once, in a second transaction on a new connection") {
    bad_server srv("reply_421_mid_session");
    harness h;
    auto a = account_for(srv.port());  // default retry policy
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("421-retried"));
    INFO(r.to_string());
    CHECK(r.sent);
    CHECK_FALSE(r.ec);
    CHECK(r.attempts == 2);
    CHECK(srv.counter("delivered") == 1);
    CHECK(srv.counter("connections") >= 2);
    CHECK(h.total().closes[idx(close_reason::broken)] >= 1);
}

TEST_CASE("421 after MAIL FROM without retries: service_closing, the connection is discarded, the next send uses a new one") {
    bad_server srv("reply_421_mid_session");
    harness h;
    auto a = account_for(srv.port());
    a.pool = quick_pool(1, 0);
    a.retry.max_attempts = 1;  // what one transaction reports
    const auto first = send(h, a, env_to({"rcpt@test"}), simple_message("421-first"));
    INFO(first.to_string());
    CHECK_FALSE(first.sent);
    CHECK(first.ec == smtp::errc::service_closing);
    REQUIRE(first.last_reply.has_value());
    CHECK(first.last_reply->code == 421);
    const auto second = send(h, a, env_to({"rcpt@test"}), simple_message("421-second"));
    INFO(second.to_string());
    CHECK(second.sent);
    CHECK(srv.counter("delivered") == 1);
    CHECK(srv.counter("connections") >= 2);
    const auto s = h.total();
    CHECK(s.closes[idx(close_reason::broken)] >= 1);
}

TEST_CASE("connection closed during DATA: an error, not reported sent") {
    bad_server srv("close_during_data");
    harness h;
    auto a = account_for(srv.port());
    a.pool = quick_pool(1, 0);
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("close-data", tricky_body(6)));
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.ec);
    CHECK(r.ec != smtp::errc::transient_failure);  // no reply came: this is a transport error
    CHECK(srv.counter("delivered") == 0);
    CHECK(srv.counter("data") == 1);
}

TEST_CASE("garbage instead of a reply: protocol_error") {
    bad_server srv("garbage");
    harness h;
    auto a = account_for(srv.port());
    a.pool = quick_pool(1, 0);
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("garbage"));
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.ec == errc::protocol_error);
    CHECK(srv.counter("delivered") == 0);
}

TEST_CASE("a 100 KB reply line: frame_too_large") {
    bad_server srv("long_line");
    harness h;
    auto a = account_for(srv.port());
    a.pool = quick_pool(1, 0);
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("long-line"));
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.ec == errc::frame_too_large);
}

TEST_CASE("a server that stops answering after EHLO: operation_timeout, quickly") {
    bad_server srv("silent");
    harness h;
    auto a = account_for(srv.port());
    a.pool = quick_pool(1, 0);
    a.client.command_timeout = 300ms;
    a.client.data_timeout = 300ms;
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("silent"), 10s);
    const auto took = std::chrono::steady_clock::now() - t0;
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.ec == errc::operation_timeout);
    CHECK(took < 5s);  // bounded by the command timeout, not by the guard
    CHECK(srv.count_verb("MAIL") >= 1);
}

TEST_CASE("a server that never greets: the send ends by its retry deadline with the checkout's cause, nothing hangs") {
    bad_server srv("silent_greeting");
    harness h;
    auto a = account_for(srv.port());
    a.pool = quick_pool(1, 0);
    // The pool's handshake deadline governs here (the adapter's own command timeout is longer).
    a.pool.handshake_timeout = 300ms;
    a.pool.checkout_timeout = 2s;
    a.client.command_timeout = 5s;
    // The send waits for the endpoint within its deadline (60 s by default), then gives up.
    a.retry.deadline = 3s;
    const auto started = std::chrono::steady_clock::now();
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("never-greeted"), 10s);
    const auto took = std::chrono::steady_clock::now() - started;
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.stage == "checkout");
    CHECK((r.ec == condition::timeout || r.ec == errc::endpoint_down_timeout));
    CHECK(r.attempts <= a.retry.max_attempts);
    CHECK(took < a.retry.deadline + a.pool.checkout_timeout);  // no checkout starts after the deadline
    CHECK(srv.counter("connections") >= 1);
    CHECK(srv.count_verb("MAIL") == 0);
}

TEST_CASE("some recipients refused: per-recipient results, sent to the accepted ones") {
    bad_server srv("rcpt_mixed");
    harness h;
    auto a = account_for(srv.port());
    a.pool = quick_pool(1, 0);
    const auto r = send(h, a, env_to({"good1@test", "reject-me@test", "good2@test"}), simple_message("mixed"));
    INFO(r.to_string());
    CHECK(r.sent);
    CHECK_FALSE(r.ec);
    REQUIRE(r.recipients.size() == 3);
    CHECK(r.recipients[0].address == "good1@test");
    CHECK(r.recipients[0].accepted());
    CHECK(r.recipients[1].address == "reject-me@test");
    CHECK_FALSE(r.recipients[1].accepted());
    CHECK(r.recipients[1].code == 550);
    REQUIRE(r.recipients[1].status.has_value());
    CHECK(*r.recipients[1].status == smtp::enhanced_status{5, 1, 1});
    CHECK(r.recipients[2].accepted());
    REQUIRE(srv.counter("delivered") == 1);
    CHECK(srv.stats().at("delivered_rcpts")[0].get<std::vector<std::string>>() ==
          std::vector<std::string>{"good1@test", "good2@test"});

    // Every recipient refused: a permanent failure, nothing sent (DATA is not even needed).
    const auto none = send(h, a, env_to({"reject-a@test", "reject-b@test"}), simple_message("mixed-none"));
    INFO(none.to_string());
    CHECK_FALSE(none.sent);
    CHECK(none.ec == smtp::errc::permanent_failure);
    CHECK(none.recipients.size() == 2);
    CHECK(srv.counter("delivered") == 1);
}

TEST_CASE("451 to the final dot: transient_failure, not sent; the connection stays usable") {
    bad_server srv("temp_fail_data");
    harness h;
    auto a = account_for(srv.port());
    a.pool = quick_pool(1, 0);
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("temp-fail"));
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.ec == smtp::errc::transient_failure);
    CHECK(r.stage == "end of data");
    REQUIRE(r.last_reply.has_value());
    CHECK(r.last_reply->code == 451);
    CHECK(srv.counter("delivered") == 0);
    // A 4xx is not a broken connection: a second try is answered the same way, not with an error
    // of the transport.
    const auto again = send(h, a, env_to({"rcpt@test"}), simple_message("temp-fail-2"));
    CHECK(again.ec == smtp::errc::transient_failure);
}

// Defect 6 of issue 10: a reply that arrives before the final dot was taken as the verdict on
// the dot (a false "sent"), and the session went on one reply out of step. Default client and
// pool options: this is what a user gets.
TEST_CASE("early reply: a 250 sent before the content is no verdict; not sent, connection discarded") {
    bool tls = false;
    bool pipelining = true;
    SUBCASE("pipelined (the default)") {}
    SUBCASE("lock-step") { pipelining = false; }
#if NETPOOL_HAS_TLS
    // Two TLS records in one segment: the early one is still inside the TLS layer, not in the
    // socket, when the 354 has been read.
    SUBCASE("STARTTLS, pipelined") { tls = true; }
#endif
    bad_server srv("early_reply", tls);
    harness h;
    smtp::account a;  // default client and pool options
    a.server.host = "127.0.0.1";
    a.server.port = srv.port();
    if (tls) {
        a.server.tls = tls_mode::starttls;
        a.server.tls_opts.ca_file = test::certs().ca_cert;
        a.server.tls_opts.server_name = "localhost";
    }
    a.client.use_pipelining = pipelining;
    constexpr int messages = 6;
    int reported_sent = 0;
    // On a strand: netpool::serialized() (core/include/netpool/transport.hpp) takes a bare
    // io_context executor for a strand (is_strand() relies on Asio 1.22's unchecked
    // any_io_executor::target<T>(), issue 10 item 12), so mailer::send awaited on the
    // two-thread io_context runs with_timeout unserialised and crashed here (heap-use-after-free
    // of run_on's cancellation slot under ASan) in most runs. Not this defect; reported.
    const asio::any_io_executor strand = asio::make_strand(h.io.executor());
    for (int i = 0; i < messages; ++i) {
        const auto r = test::run_on(strand, send_raw(h.mail, a, env_to({"rcpt@test"}),
                                                     simple_message("early-" + std::to_string(i))), 20s);
        INFO("message " << i << ": " << r.to_string());
        if (r.sent) ++reported_sent;
        CHECK_FALSE(r.sent);
        CHECK_MESSAGE(r.ec == smtp::errc::reply_before_end_of_data, "ec: " << r.ec.message());
        CHECK(r.stage == "end of data");
        CHECK(r.discard_connection());
        CHECK_MESSAGE(r.detail.find("before the end of the message data") != std::string::npos, r.detail);
        REQUIRE(r.last_reply.has_value());
        CHECK(r.last_reply->code == 250);  // the premature reply, shown for what it is
    }
    CHECK(reported_sent == 0);
    CHECK(srv.counter("delivered") == 0);
    CHECK(srv.counter("early_replies") == messages);
    // The final dot was never sent: the server never came to judge any content.
    CHECK(srv.counter("rejected") == 0);
    // Each connection carried one transaction: none was reused out of step.
    std::map<std::string, int> mails_per_connection;
    for (const auto& c : srv.commands()) {
        std::istringstream in(c);
        std::string conn, verb;
        in >> conn >> verb;
        if (verb == "MAIL") ++mails_per_connection[conn];
    }
    CHECK(mails_per_connection.size() == static_cast<std::size_t>(messages));
    for (const auto& [conn, n] : mails_per_connection) CHECK_MESSAGE(n == 1, "connection " << conn << ": " << n);
    CHECK(test::wait_for([&] { return h.total().closes[idx(close_reason::broken)] >= messages; }, 5s));
}

// Issue 10, suspicion: raw content with a line over 998 octets went out as it was. It is now
// refused before a byte is sent (a raw message is the caller's: netpool does not rewrite it).
TEST_CASE("a raw message with a line over 998 octets: line_too_long, nothing sent, the session stays usable") {
    bad_server srv("normal");
    harness h;
    auto a = account_for(srv.port());
    a.pool = quick_pool(1, 0);
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("long-line", std::string(1200, 'L') + "\r\n"));
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.ec == smtp::errc::line_too_long);
    CHECK(r.stage == "content");
    CHECK(r.detail.find("1200 octets") != std::string::npos);
    CHECK_FALSE(r.discard_connection());
    CHECK(srv.count_verb("MAIL") == 0);
    // 998 octets are fine, and on the same connection.
    const auto ok = send(h, a, env_to({"rcpt@test"}), simple_message("max-line", std::string(998, 'L') + "\r\n"));
    INFO(ok.to_string());
    CHECK(ok.sent);
    CHECK(srv.counter("delivered") == 1);
    CHECK(srv.counter("connections") == 1);
}


// --- retries (retry_policy, docs/smtp.md#retries) ------------------------------------------

TEST_CASE("retries: the final dot taken and no reply: outcome unknown, not sent again by default") {
    bad_server srv("close_after_dot");
    harness h;
    auto a = account_for(srv.port());  // default retry policy
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("unknown-1"));
    INFO(r.to_string());
    CHECK_FALSE(r.sent);
    CHECK(r.ec == smtp::errc::outcome_unknown);
    CHECK(r.stage == "end of data");
    CHECK(r.attempts == 1);
    CHECK_MESSAGE(r.detail.find("may have been delivered") != std::string::npos, r.detail);
    CHECK(srv.counter("delivered") == 1);  // the server has it, once
}

TEST_CASE("retries: at-least-once (retry_unknown_outcome) sends it again, and the server gets it twice") {
    bad_server srv("close_after_dot");
    harness h;
    auto a = account_for(srv.port());
    a.retry.retry_unknown_outcome = true;
    a.retry.max_attempts = 2;
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("unknown-2"));
    INFO(r.to_string());
    CHECK(r.ec == smtp::errc::outcome_unknown);  // the second attempt ended the same way
    CHECK(r.attempts == 2);
    CHECK(srv.counter("delivered") == 2);  // the duplicate this opt-in accepts
}

TEST_CASE("retries: a 4xx to one RCPT: sent to the others, then to that one alone; nobody gets it twice") {
    bad_server srv("rcpt_defer_once");
    harness h;
    auto a = account_for(srv.port());
    const auto r = send(h, a, env_to({"first@test", "defer-me@test", "last@test"}), simple_message("deferred"));
    INFO(r.to_string());
    CHECK(r.sent);
    CHECK_FALSE(r.ec);
    CHECK(r.attempts == 2);
    REQUIRE(r.recipients.size() == 3);
    for (const auto& rr : r.recipients) CHECK_MESSAGE(rr.accepted(), rr.address << ": " << rr.code);
    CHECK(srv.counter("delivered") == 2);
    CHECK(srv.stats().at("delivered_rcpts") ==
          nlohmann::json::array({nlohmann::json::array({"first@test", "last@test"}), nlohmann::json::array({"defer-me@test"})}));
}

TEST_CASE("retries: 451 to the final dot once: refused, so safe to send again; delivered once") {
    bad_server srv("temp_fail_data_once");
    harness h;
    auto a = account_for(srv.port());
    const auto r = send(h, a, env_to({"rcpt@test"}), simple_message("temp-once"));
    INFO(r.to_string());
    CHECK(r.sent);
    CHECK(r.attempts == 2);
    CHECK(srv.counter("rejected") == 1);
    CHECK(srv.counter("delivered") == 1);
}

struct numbered_send {
    std::string sha;  // of what the server should record
    smtp::send_result r;
};

/// Sends messages prefix0, prefix1, ... (taking the next number from `next`) until all of
/// `out` is taken; several of these share the work.
awaitable<void> send_share(smtp::mailer& m, smtp::account a, std::string prefix, std::vector<numbered_send>& out,
                           std::atomic<int>& next, std::atomic<int>& finished) {
    for (int i = next++; i < static_cast<int>(out.size()); i = next++) {
        const std::string raw = simple_message(prefix + std::to_string(i));
        out[i].sha = test::sha256_hex(expected_content(raw));
        smtp::envelope e;  // (g++ 12 rejects a braced list of literals in a coroutine)
        e.mail_from = "sender@test";
        e.rcpt_to.push_back("rcpt@test");
        out[i].r = co_await send_raw(m, a, e, raw);
        ++finished;
    }
}

TEST_CASE("retries: aiosmtpd killed (SIGKILL) twice under load: no message arrives twice, each ends sent, failed "
          "or unknown") {
    // aiosmtpd on a fixed port and record directory, restarted on both after each kill.
    const std::string dir = new_dir("aiosmtpd-killed");
    const std::uint16_t port = test::free_port();
    const std::vector<std::string> argv{python, script("smtp_server.py"), "--mode", "plain", "--port",
                                        std::to_string(port), "--record", dir};
    auto server = std::make_unique<test::child_process>(argv, "aiosmtpd-killed");
    harness h;
    auto a = account_for(port);  // default pool and retry policy
    constexpr int messages = 240;
    constexpr int senders = 12;
    std::vector<numbered_send> out(messages);
    std::atomic<int> next{0}, finished{0};
    std::vector<std::future<void>> running;
    for (int i = 0; i < senders; ++i)
        running.push_back(asio::co_spawn(asio::make_strand(h.io.executor()),
                                         send_share(h.mail, a, "killed-", out, next, finished), asio::use_future));
    const auto kill_and_restart = [&](int after, std::chrono::milliseconds down) {
        REQUIRE(test::wait_for([&] { return finished.load() >= after; }, 60s));
        ::kill(server->pid(), SIGKILL);
        server.reset();  // reaps it
        std::this_thread::sleep_for(down);
        server = std::make_unique<test::child_process>(argv, "aiosmtpd-killed");
    };
    kill_and_restart(40, 1000ms);
    kill_and_restart(140, 300ms);
    for (auto& f : running) REQUIRE(f.wait_for(120s) == std::future_status::ready);

    std::map<std::string, int> received;
    aiosmtpd_reader reader{dir};
    for (const auto& e : reader.index()) ++received[e.at("sha256").get<std::string>()];
    int sent = 0, failed = 0, unknown = 0, retried = 0, duplicates = 0, wrong = 0;
    std::map<std::string, int> failures;
    for (const auto& o : out) {
        const int n = received.count(o.sha) ? received.at(o.sha) : 0;
        if (n > 1) ++duplicates;
        if (o.r.attempts > 1) ++retried;
        if (o.r.sent) {
            ++sent;
            if (n != 1) ++wrong;
        } else if (o.r.ec == smtp::errc::outcome_unknown) {
            ++unknown;
        } else {
            ++failed;
            ++failures[o.r.stage + ": " + o.r.ec.message()];
            if (n != 0) ++wrong;  // reported failed, yet the server has it
        }
    }
    std::ostringstream why;
    for (const auto& [k, v] : failures) why << ' ' << v << "x[" << k << ']';
    MESSAGE("messages=" << messages << " sent=" << sent << " failed=" << failed << " unknown=" << unknown
                        << " retried=" << retried << " server_received=" << reader.index().size()
                        << " duplicates=" << duplicates << " failures:" << why.str());
    CHECK(sent + failed + unknown == messages);
    CHECK(duplicates == 0);
    CHECK(wrong == 0);
    CHECK(retried > 0);  // the kills were felt, and ridden out
    CHECK(sent + unknown >= messages * 9 / 10);
}

}  // TEST_SUITE
