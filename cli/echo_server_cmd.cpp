// `netpool echo-server`: the echo test server as a process, for scripts, demos and
// benchmarks that want it outside their own address space.
#include "args.hpp"
#include "commands.hpp"

#include <netpool/config.hpp>
#include <netpool/echo/server.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/signal_set.hpp>

#include <sys/resource.h>

#include <array>
#include <csignal>
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

constexpr std::array<option_spec, 10> specs{{
    {"listen", true},
    {"port", true},
    {"tls", false},
    {"cert", true},
    {"key", true},
    {"mode", true},
    {"reset-after", true},
    {"max-frame", true},
    {"threads", true},
    {"help", false},
}};

int usage_error(const std::string& message) {
    std::cerr << "netpool echo-server: " << message << "\n\n" << usage;
    return exit_usage;
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
    std::string error;
    const auto opts = parse_options(args, specs, error);
    if (!opts) return usage_error(error);
    const auto has = [&](std::string_view name) { return opts->find(name) != opts->end(); };
    const auto value = [&](std::string_view name) { return opts->find(name)->second; };
    if (has("help")) {
        std::cout << usage;
        return exit_ok;
    }

    echo::server_options so;
    if (has("listen")) so.address = std::string(value("listen"));
    if (has("port")) {
        const auto port = parse_unsigned<std::uint16_t>(value("port"));
        if (!port) return usage_error("--port expects 0..65535, got '" + std::string(value("port")) + "'");
        so.port = *port;
    }
    if (has("tls")) {
#if !NETPOOL_HAS_TLS
        // Refused, not ignored: clients started for TLS would otherwise meet a plain server.
        std::cerr << "netpool echo-server: --tls is not available: " << NETPOOL_NO_TLS_REASON << '\n';
        return exit_usage;
#endif
        if (!has("cert") || !has("key")) return usage_error("--tls needs --cert and --key");
        so.cert_file = std::string(value("cert"));
        so.key_file = std::string(value("key"));
    } else if (has("cert") || has("key")) {
        return usage_error("--cert and --key need --tls");
    }
    if (has("mode")) {
        const auto mode = echo::parse_fault_mode(value("mode"));
        if (!mode) return usage_error("unknown --mode '" + std::string(value("mode")) + "'");
        so.mode = *mode;
    }
    if (has("reset-after")) {
        const auto n = parse_unsigned<std::size_t>(value("reset-after"), 1);
        if (!n) return usage_error("--reset-after expects a count of at least 1");
        so.reset_after = *n;
    }
    if (has("max-frame")) {
        const auto n = parse_unsigned<std::size_t>(value("max-frame"), 1, echo::max_declarable_frame);
        if (!n) return usage_error("--max-frame expects a byte count");
        so.max_frame = *n;
    }
    unsigned threads = 1;
    if (has("threads")) {
        const auto n = parse_unsigned<unsigned>(value("threads"), 1, 256);
        if (!n) return usage_error("--threads expects 1..256");
        threads = *n;
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
    return exit_ok;
}

}  // namespace netpool::cli
