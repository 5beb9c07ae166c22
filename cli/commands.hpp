// The subcommands of `netpool`. Each takes the arguments after its name and returns the
// process exit code (netpool/tools/args.hpp); adding one means a function here and a row in main.cpp.
#pragma once

#include <span>
#include <string_view>

namespace netpool::cli {

/// `netpool echo-server`: runs netpool::echo::server until SIGINT or SIGTERM.
int echo_server_main(std::span<const std::string_view> args);

/// `netpool demo`: the main job; echo load, new connection per request versus pooled.
int demo_main(std::span<const std::string_view> args);

/// `netpool smtp-send`: SMTP load through a pool of authenticated sessions, or a new session
/// per message (--no-pool); counts, reasons, messages/s, latency, pool stats.
int smtp_send_main(std::span<const std::string_view> args);

/// `netpool imap-fetch`: the newest messages of a mailbox (imap::client::fetch_latest).
int imap_fetch_main(std::span<const std::string_view> args);

/// `netpool imap-bench`: fetch latency with a reused session (a pool) or a new connection
/// per fetch; prints mode, top, warmup, iterations, success, avg/median/p95 ms and qps.
int imap_bench_main(std::span<const std::string_view> args);

/// `netpool redis-bench`: Redis INCR through a pool versus a new connection per command;
/// prints mode, requests, success, avg/median/p95 ms, rps and the throughput ratio.
int redis_bench_main(std::span<const std::string_view> args);

}  // namespace netpool::cli
