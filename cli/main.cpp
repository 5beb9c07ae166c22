// `netpool`: servers for tests and demos, and load tools. One subcommand per row below.
#include "commands.hpp"

#include <netpool/tools/args.hpp>
#include <netpool/tools/report.hpp>

#include <netpool/config.hpp>

#include <algorithm>
#include <array>
#include <exception>
#include <iostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct command {
    std::string_view name;
    std::string_view summary;
    int (*run)(std::span<const std::string_view> args);
};

constexpr std::array commands{
    command{"echo-server", "run an echo server (plain or TLS, with fault modes) until SIGINT/SIGTERM",
            netpool::cli::echo_server_main},
    command{"demo", "echo load on loopback: a new connection per request versus pooled, plain and TLS",
            netpool::cli::demo_main},
    command{"smtp-send", "send test mail through a pool of SMTP sessions (or one per message), like smtp-source",
            netpool::cli::smtp_send_main},
    command{"imap-fetch", "print the newest messages of an IMAP mailbox (TLS verified, password from a file or env)",
            netpool::cli::imap_fetch_main},
    command{"imap-bench", "IMAP fetch latency: a reused session (pool) versus a new connection per fetch",
            netpool::cli::imap_bench_main},
    command{"redis-bench", "Redis commands through a pool versus a new connection per command (starts redis-server)",
            netpool::cli::redis_bench_main},
};

void print_usage(std::ostream& out) {
    out << "usage: netpool <command> [options]\n"
           "       netpool <command> --help\n\n"
           "commands:\n";
    for (const auto& c : commands) out << "  " << c.name << std::string(14 - std::min<std::size_t>(c.name.size(), 13), ' ') << c.summary << '\n';
    if (!NETPOOL_HAS_TLS) out << "\nTLS is not available: " << NETPOOL_NO_TLS_REASON << "; plain TCP only.\n";
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    if (args.empty()) {
        print_usage(std::cerr);
        return netpool::tools::exit_usage;
    }
    const std::string_view name = args.front();
    if (name == "--help" || name == "-h" || name == "help") {
        print_usage(std::cout);
        return netpool::tools::exit_ok;
    }
    for (const auto& c : commands) {
        if (c.name != name) continue;
        const auto rest = std::span(args).subspan(1);
        try {
            return c.run(rest);
        } catch (const std::exception& e) {
            // Configuration mistakes (bad certificate, port in use) end up here; with --json
            // they are a JSON object too.
            const netpool::tools::command_report report(std::string(name), netpool::tools::json_requested(rest));
            return report.failure("setup", e.what());
        }
    }
    std::cerr << "netpool: unknown command '" << name << "'\n\n";
    print_usage(std::cerr);
    return netpool::tools::exit_usage;
}
