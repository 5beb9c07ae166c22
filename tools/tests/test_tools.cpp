// netpool::tools alone: option parsing and its messages (the CLI tests check them end to
// end), the load driver's counting, the JSON error object, child processes. No sockets, no
// sleeps.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <netpool/tools/args.hpp>
#include <netpool/tools/child_process.hpp>
#include <netpool/tools/load.hpp>
#include <netpool/tools/report.hpp>

#include <unistd.h>

#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
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
