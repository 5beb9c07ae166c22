// netpool::tools alone: option parsing and its messages (the CLI tests check them end to
// end), the load driver's counting, the JSON error object, child processes, the HTTP
// handling of --metrics-port. The only sockets and waits are the metrics endpoint's own
// tests, on 127.0.0.1 (a 300 ms deadline at most).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <netpool/tools/args.hpp>
#include <netpool/tools/child_process.hpp>
#include <netpool/tools/load.hpp>
#include <netpool/tools/metrics_server.hpp>
#include <netpool/tools/report.hpp>

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <unistd.h>

#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tools = netpool::tools;

namespace {

/// The usage_error parse() throws for `args`, or "" when it throws none.
std::string parse_error(tools::command_line& cl, std::vector<std::string_view> args) {
    try {
        cl.parse(args);
    } catch (const tools::usage_error& e) {
        return e.what();
    }
    return {};
}

struct options {
    bool json = false;
    std::string host;
    std::size_t count = 7;
    std::uint16_t port = 0;
    std::chrono::milliseconds timeout{30000};
    std::vector<std::string> to;
    tools::command_line cl;
    options() {
        cl.flag("json", json);
        cl.text("host", host);
        cl.count("count", count, 1, 100);
        cl.port("port", port);
        cl.duration("timeout", timeout);
        cl.repeated("to", to);
        cl.refuse("password", "is refused: never on the command line");
    }
};

/// The mistake a fresh set of options finds in `args`.
std::string mistake(std::vector<std::string_view> args) {
    options o;
    return parse_error(o.cl, std::move(args));
}

}  // namespace

TEST_CASE("command_line: values, flags, repeated options") {
    options o;
    CHECK(parse_error(o.cl, {"--host", "mail", "--count=12", "--json", "--to", "a", "--to=b", "--timeout", "500ms",
                             "--port", "2525"}) == "");
    CHECK(o.host == "mail");
    CHECK(o.count == 12);
    CHECK(o.json);
    CHECK(o.to == std::vector<std::string>{"a", "b"});
    CHECK(o.timeout == std::chrono::milliseconds(500));
    CHECK(o.port == 2525);
    CHECK(o.cl.given("host"));
    CHECK_FALSE(options().cl.given("host"));
}

TEST_CASE("command_line: every mistake names the option") {
    CHECK(mistake({"--bogus"}) == "unknown option '--bogus'");
    CHECK(mistake({"--bogus=1"}) == "unknown option '--bogus'");
    CHECK(mistake({"stray"}) == "unexpected argument 'stray'");
    CHECK(mistake({"--count"}) == "option '--count' needs a value");
    CHECK(mistake({"--json=yes"}) == "option '--json' takes no value");
    CHECK(mistake({"--host", "a", "--host", "b"}) == "option '--host' given twice");
    CHECK(mistake({"--json", "--json"}) == "option '--json' given twice");
    CHECK(mistake({"--count", "0"}) == "--count expects a positive integer, got '0'");
    CHECK(mistake({"--count", "-3"}) == "--count expects a positive integer, got '-3'");
    CHECK(mistake({"--count", "101"}) == "--count expects a positive integer, got '101'");
    CHECK(mistake({"--port", "70000"}) == "--port expects a port number (1-65535), got '70000'");
    CHECK(mistake({"--timeout", "0"}) ==
          "--timeout expects seconds (e.g. 30) or milliseconds (e.g. 500ms), got '0'");
    // Refused before anything else is looked at, whatever else is wrong.
    CHECK(mistake({"--bogus", "--password=x"}) == "--password is refused: never on the command line");
}

TEST_CASE("json_requested sees --json before parsing") {
    const std::vector<std::string_view> with{"--count", "x", "--json"}, without{"--json=yes"};
    CHECK(tools::json_requested(with));
    CHECK_FALSE(tools::json_requested(without));
}

TEST_CASE("drive: counts, groups failures, turns exceptions into failures") {
    asio::io_context ioc;
    std::size_t calls = 0;
    const tools::load_options o{10, 4, nullptr, {}};
    const auto r = tools::drive(ioc, o, [&](std::size_t worker) -> asio::awaitable<tools::outcome> {
        CHECK(worker < 4);
        const std::size_t n = calls++;
        if (n % 5 == 1) throw std::runtime_error("boom");
        if (n % 5 == 2) co_return tools::outcome::failure("refused");
        co_return tools::outcome::success();
    });
    CHECK(calls == 10);
    CHECK(r.ok == 6);
    CHECK(r.failed == 4);
    CHECK(r.lat.size() == 6);
    REQUIRE(r.failures.size() == 2);
    CHECK(r.failures.at("refused").count == 2);
    CHECK(r.failures.at("unexpected exception: boom").count == 2);
    // More coroutines than operations: the extra ones find nothing to do, and it still ends.
    const auto few = tools::drive(ioc, {2, 8, nullptr, {}},
                                  [](std::size_t) -> asio::awaitable<tools::outcome> { co_return tools::outcome{}; });
    CHECK(few.ok == 2);
}

TEST_CASE("latencies: percentiles interpolate between ranks") {
    tools::latencies l;
    CHECK(l.percentile(0.5) == 0);
    for (double v : {40.0, 10.0, 30.0, 20.0}) l.add(v);
    CHECK(l.percentile(0) == 10);
    CHECK(l.percentile(1) == 40);
    CHECK(l.percentile(0.5) == doctest::Approx(25));
    CHECK(l.average() == doctest::Approx(25));
}

TEST_CASE("command_report: with --json an error is one JSON object on stdout, scrubbed") {
    std::ostringstream out, err;
    auto* old_out = std::cout.rdbuf(out.rdbuf());
    auto* old_err = std::cerr.rdbuf(err.rdbuf());
    tools::command_report report("smtp-send", true, [](std::string s) {
        for (auto at = s.find("hunter2"); at != std::string::npos; at = s.find("hunter2")) s.replace(at, 7, "[redacted]");
        return s;
    });
    report.set_context("server", "127.0.0.1:25");
    const int status = report.failure("preflight handshake", "AUTH: 535 \"hunter2\" refused", "check the password");
    std::cout.rdbuf(old_out);
    std::cerr.rdbuf(old_err);
    CHECK(status == tools::exit_failure);
    const auto doc = tools::json::parse(out.str());
    CHECK(doc["command"] == "smtp-send");
    CHECK(doc["exit_status"] == 1);
    CHECK(doc["error"]["where"] == "preflight handshake");
    CHECK(doc["error"]["what"] == "AUTH: 535 \"[redacted]\" refused");
    CHECK(doc["server"] == "127.0.0.1:25");
    CHECK(out.str().find("hunter2") == std::string::npos);
    CHECK(err.str().find("hunter2") == std::string::npos);
    CHECK(err.str().find("netpool smtp-send: AUTH: 535") != std::string::npos);
    // Bytes that are not UTF-8 (a server's reply) do not make the dump throw.
    CHECK(tools::dump(tools::json("\xff\xfe")).size() > 2);
}

TEST_CASE("child_process: a forked function's status, its stdout line, its stderr") {
    tools::child_process::options o;
    o.stdout_pipe = true;
    tools::child_process child(
        []() -> int {
            static constexpr char out[] = "READY 42\n";
            static constexpr char err[] = "a reason\n";
            if (::write(1, out, sizeof out - 1) < 0 || ::write(2, err, sizeof err - 1) < 0) return 9;
            return 3;
        },
        o);
    CHECK(child.read_line(std::chrono::seconds(10)) == std::optional<std::string>("READY 42"));
    CHECK(child.wait() == 3);
    CHECK_FALSE(child.signal());
    CHECK(child.stderr_tail() == "a reason");
    tools::child_process missing(std::vector<std::string>{"/nonexistent/program"}, {});
    CHECK(missing.wait() == 127);
    CHECK(missing.stderr_tail() == "exec failed");
}

namespace {

/// respond() with an exposition that counts its calls.
struct http_case {
    int calls = 0;
    std::optional<std::string> operator()(std::string_view request, std::size_t max = 8192) {
        return tools::metrics_http::respond(request, max, [this] {
            ++calls;
            return std::string("netpool_waiters{pool=\"p\"} 0\n");
        });
    }
};

std::string status_line(const std::optional<std::string>& r) {
    REQUIRE(r);
    return r->substr(0, r->find("\r\n"));
}

}  // namespace

TEST_CASE("metrics_http: GET /metrics, and the refusals") {
    http_case h;
    const auto ok = h("GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
    CHECK(status_line(ok) == "HTTP/1.1 200 OK");
    CHECK(ok->find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
    CHECK(ok->find("\r\nContent-Length: 28\r\n") != std::string::npos);
    CHECK(ok->find("\r\nConnection: close\r\n") != std::string::npos);
    CHECK(ok->ends_with("\r\n\r\nnetpool_waiters{pool=\"p\"} 0\n"));
    CHECK(h.calls == 1);
    // A query string is ignored; HTTP/1.0 and bare LFs are taken.
    CHECK(status_line(h("GET /metrics?x=1 HTTP/1.0\n\n")) == "HTTP/1.1 200 OK");
    CHECK(h.calls == 2);

    CHECK(status_line(h("GET / HTTP/1.1\r\n\r\n")) == "HTTP/1.1 404 Not Found");
    CHECK(status_line(h("GET /metrics/ HTTP/1.1\r\n\r\n")) == "HTTP/1.1 404 Not Found");
    const auto post = h("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    CHECK(status_line(post) == "HTTP/1.1 405 Method Not Allowed");
    CHECK(post->find("\r\nAllow: GET\r\n") != std::string::npos);
    CHECK(status_line(h("HEAD /metrics HTTP/1.1\r\n\r\n")) == "HTTP/1.1 405 Method Not Allowed");
    CHECK(status_line(h("GET /metrics\r\n\r\n")) == "HTTP/1.1 400 Bad Request");
    CHECK(status_line(h("GET  /metrics HTTP/1.1\r\n\r\n")) == "HTTP/1.1 400 Bad Request");
    CHECK(status_line(h("GET /metrics SPDY/3\r\n\r\n")) == "HTTP/1.1 400 Bad Request");
    CHECK(status_line(h("\x16\x03\x01 binary\r\n\r\n")) == "HTTP/1.1 400 Bad Request");
    CHECK(h.calls == 2);  // only GET /metrics renders
}

TEST_CASE("metrics_http: an incomplete head waits, up to the size limit") {
    http_case h;
    CHECK_FALSE(h("GET /metrics HTTP/1.1\r\nHost: x\r\n"));
    CHECK_FALSE(h(""));
    CHECK_FALSE(h(std::string(99, 'a'), 100));
    CHECK(status_line(h(std::string(100, 'a'), 100)) == "HTTP/1.1 431 Request Header Fields Too Large");
    // A complete head past the limit (one read brought more) is refused too.
    CHECK(status_line(h("GET /metrics HTTP/1.1\r\nX: " + std::string(200, 'b') + "\r\n\r\n", 100)) ==
          "HTTP/1.1 431 Request Header Fields Too Large");
    CHECK(h.calls == 0);
    // An exposition that throws is a 500, not a dead server.
    CHECK(status_line(tools::metrics_http::respond("GET /metrics HTTP/1.1\r\n\r\n", 8192, []() -> std::string {
              throw std::runtime_error("no");
          })) == "HTTP/1.1 500 Internal Server Error");
}

TEST_CASE("metrics_options: --metrics-port 0-65535, --metrics-address an IP address that needs it") {
    const auto parse = [](std::vector<std::string_view> args, tools::metrics_options& o) {
        tools::command_line cl;
        o.declare(cl);
        try {
            cl.parse(args);
            o.check(cl);
        } catch (const tools::usage_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    tools::metrics_options o;
    CHECK(parse({}, o) == "");
    CHECK_FALSE(o.port);
    CHECK(parse({"--metrics-port", "0"}, o) == "");
    CHECK(o.port == std::optional<std::uint16_t>(0));
    CHECK(o.address == "127.0.0.1");
    tools::metrics_options v6;
    CHECK(parse({"--metrics-port=9100", "--metrics-address", "::1"}, v6) == "");
    CHECK(v6.port == std::optional<std::uint16_t>(9100));
    CHECK(v6.address == "::1");
    tools::metrics_options bad;
    CHECK(parse({"--metrics-port", "65536"}, bad) ==
          "--metrics-port expects a port number (0-65535; 0: a free one), got '65536'");
    CHECK(parse({"--metrics-port", "0", "--metrics-address", "localhost"}, bad) ==
          "--metrics-address expects an IP address (e.g. 127.0.0.1 or ::1), got 'localhost'");
    tools::metrics_options alone;
    CHECK(parse({"--metrics-address", "127.0.0.1"}, alone) == "--metrics-address needs --metrics-port");
}

TEST_CASE("metrics_server: serves the current source on 127.0.0.1, a taken port is an error") {
    netpool::pool_stats s;
    s.name = "p1";
    s.endpoint = "127.0.0.1:6379";
    s.protocol = "redis";
    s.idle = 3;
    tools::metrics_server server("127.0.0.1", 0);
    REQUIRE(server.port() != 0);
    CHECK(server.url() == "http://127.0.0.1:" + std::to_string(server.port()) + "/metrics");
    const auto get = [&](const std::string& request) {
        asio::io_context ioc;
        asio::ip::tcp::socket sock(ioc);
        sock.connect({asio::ip::make_address("127.0.0.1"), server.port()});
        asio::write(sock, asio::buffer(request));
        std::string reply;
        std::error_code ec;
        asio::read(sock, asio::dynamic_buffer(reply), ec);  // to the server's close
        CHECK(ec == asio::error::eof);
        return reply;
    };
    // No source yet: a valid, empty exposition.
    auto empty = get("GET /metrics HTTP/1.1\r\n\r\n");
    CHECK(empty.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(empty.find("netpool_connections{") == std::string::npos);
    server.set_source([&] { return std::vector<netpool::pool_stats>{s}; });
    auto full = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(full.find("netpool_connections{pool=\"p1\",endpoint=\"" + s.endpoint + "\",state=\"idle\"} 3\n") !=
          std::string::npos);
    s.idle = 4;  // rendered fresh for each request
    CHECK(get("GET /metrics HTTP/1.1\r\n\r\n").find("state=\"idle\"} 4\n") != std::string::npos);
    CHECK(get("GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
    server.set_source({});
    CHECK(get("GET /metrics HTTP/1.1\r\n\r\n").find("pool=\"p1\"") == std::string::npos);

    try {
        tools::metrics_server again("127.0.0.1", server.port());
        FAIL("a second server on the same port");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).starts_with("cannot listen on 127.0.0.1:" + std::to_string(server.port()) + ": "));
    }
    tools::metrics_options o;
    o.port = server.port();
    try {
        (void)tools::start_metrics(o);
        FAIL("start_metrics on a taken port");
    } catch (const tools::usage_error& e) {
        CHECK(std::string(e.what()).starts_with("--metrics-port " + std::to_string(server.port()) + ": cannot listen"));
    }
}

TEST_CASE("metrics_server: a silent or oversized client is cut off, extra connections are closed") {
    tools::metrics_server::limits l;
    l.max_request = 64;
    l.deadline = std::chrono::milliseconds(300);
    l.max_connections = 1;
    tools::metrics_server server("127.0.0.1", 0, l);
    asio::io_context ioc;
    const asio::ip::tcp::endpoint at(asio::ip::make_address("127.0.0.1"), server.port());
    const auto until_closed = [](asio::ip::tcp::socket& sock) {
        std::string reply;
        std::error_code ec;
        asio::read(sock, asio::dynamic_buffer(reply), ec);
        return reply;
    };
    asio::ip::tcp::socket silent(ioc), extra(ioc);
    silent.connect(at);
    extra.connect(at);  // beyond max_connections: closed at once, nothing sent
    CHECK(until_closed(extra).empty());
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(until_closed(silent).empty());  // the deadline closes it
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(waited < std::chrono::seconds(3));
    // A head that does not end within max_request bytes: 431, then closed. The silent
    // connection's slot frees a moment after its socket closes: retry briefly.
    std::string reply;
    for (int i = 0; i < 50 && reply.empty(); ++i) {
        asio::ip::tcp::socket big(ioc);
        big.connect(at);
        std::error_code ec;
        asio::write(big, asio::buffer(std::string(100, 'a')), ec);
        reply = until_closed(big);
        if (reply.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(reply.starts_with("HTTP/1.1 431 "));
}
