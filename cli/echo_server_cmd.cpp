// `netpool echo-server`: the echo test server as a process, for scripts, demos and
// benchmarks that want it outside their own address space.
#include "commands.hpp"

#include <netpool/tools/args.hpp>

#include <netpool/config.hpp>
#include <netpool/echo/server.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/signal_set.hpp>

#include <sys/resource.h>

#include <csignal>
#include <cstdint>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace netpool::cli {

namespace {

#if NETPOOL_HAS_TLS
#define NETPOOL_CLI_TLS_NOTE ""
#else
#define NETPOOL_CLI_TLS_NOTE "\n                     (not available: " NETPOOL_NO_TLS_REASON ")"
#endif

constexpr std::string_view usage =
    "usage: netpool echo-server [--listen ADDR] [--port N] [--tls --cert FILE --key FILE]\n"
    "                           [--mode MODE] [--reset-after N] [--max-frame BYTES] [--threads N]\n\n"
    "  --listen ADDR      address to listen on (default 127.0.0.1)\n"
    "  --port N           port (default 0: an ephemeral port, printed at start)\n"
    "  --tls              speak TLS; needs --cert and --key (PEM files)" NETPOOL_CLI_TLS_NOTE "\n"
    "  --mode MODE        normal | silent | no_greeting_garbage | close_mid_frame | reset_after_n\n"
    "  --reset-after N    with --mode reset_after_n: close each connection after N frames (default 1)\n"
    "  --max-frame BYTES  largest frame accepted (default 1048576)\n"
    "  --threads N        threads running the server (default 1)\n\n"
    "Prints \"listening on ADDR:PORT\" once it accepts, and runs until SIGINT or SIGTERM.\n";
#undef NETPOOL_CLI_TLS_NOTE

int usage_error(const std::string& message) {
    std::cerr << "netpool echo-server: " << message << "\n\n" << usage;
    return tools::exit_usage;
}

/// Thousands of test connections need thousands of descriptors; the soft limit is often
/// 1024 while the hard one allows far more.
void raise_descriptor_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
}

}  // namespace

int echo_server_main(std::span<const std::string_view> args) {
    echo::server_options so;
    bool tls = false, help = false;
    std::string cert, key;
    unsigned threads = 1;
    tools::command_line cl;
    cl.text("listen", so.address);
    cl.option("port", [&](const std::string& v) {
        const auto port = tools::parse_unsigned(v, 0, 65535);
        if (!port) throw tools::usage_error("--port expects 0..65535, got '" + v + "'");
        so.port = static_cast<std::uint16_t>(*port);
    });
    cl.flag("tls", tls);
    cl.text("cert", cert);
    cl.text("key", key);
    cl.option("mode", [&](const std::string& v) {
        const auto mode = echo::parse_fault_mode(v);
        if (!mode) throw tools::usage_error("unknown --mode '" + v + "'");
        so.mode = *mode;
    });
    cl.option("reset-after", [&](const std::string& v) {
        const auto n = tools::parse_unsigned(v, 1, SIZE_MAX);
        if (!n) throw tools::usage_error("--reset-after expects a count of at least 1");
        so.reset_after = static_cast<std::size_t>(*n);
    });
    cl.option("max-frame", [&](const std::string& v) {
        const auto n = tools::parse_unsigned(v, 1, echo::max_declarable_frame);
        if (!n) throw tools::usage_error("--max-frame expects a byte count");
        so.max_frame = static_cast<std::size_t>(*n);
    });
    cl.option("threads", [&](const std::string& v) {
        const auto n = tools::parse_unsigned(v, 1, 256);
        if (!n) throw tools::usage_error("--threads expects 1..256");
        threads = static_cast<unsigned>(*n);
    });
    cl.flag("help", help);
    try {
        cl.parse(args);
    } catch (const tools::usage_error& e) {
        return usage_error(e.what());
    }
    if (help) {
        std::cout << usage;
        return tools::exit_ok;
    }
    if (tls) {
#if !NETPOOL_HAS_TLS
        // Refused, not ignored: clients started for TLS would otherwise meet a plain server.
        std::cerr << "netpool echo-server: --tls is not available: " << NETPOOL_NO_TLS_REASON << '\n';
        return tools::exit_usage;
#endif
        if (!cl.given("cert") || !cl.given("key")) return usage_error("--tls needs --cert and --key");
        so.cert_file = cert;
        so.key_file = key;
    } else if (cl.given("cert") || cl.given("key")) {
        return usage_error("--cert and --key need --tls");
    }
    std::error_code address_ec;
    const auto address = asio::ip::make_address(so.address, address_ec);
    if (address_ec) return usage_error("--listen expects an IP address, got '" + so.address + "'");

    raise_descriptor_limit();
    asio::io_context ioc(static_cast<int>(threads));
    echo::server srv(ioc.get_executor(), so);
    srv.start();

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](const std::error_code& ec, int) {
        if (ec) return;
        // Close every connection first, so clients see the server go away, then let run() end.
        srv.stop([&ioc] { ioc.stop(); });
    });

    const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    std::cout << "listening on " << host << ':' << srv.port() << std::endl;

    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
    return tools::exit_ok;
}

}  // namespace netpool::cli
