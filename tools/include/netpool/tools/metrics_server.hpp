// `--metrics-port`: a tiny HTTP endpoint that serves the Prometheus text exposition
// (netpool::to_prometheus) of a command's pools while the command runs, for a scraper or for
// `curl http://127.0.0.1:PORT/metrics`.
//
// What it answers: GET /metrics (a query string is ignored) with 200 and
// `Content-Type: text/plain; version=0.0.4; charset=utf-8`, the exposition rendered fresh
// for each request; 404 for any other path, 405 for any other method, 400 for what is not
// an HTTP request, 431 for a request head over 8 KiB. Each connection gets one response and
// is closed; a client that has not sent a whole request head within 5 s is disconnected, and
// at most 8 connections are served at once (more are closed on accept). No keep-alive, no
// TLS, no authentication: it listens on 127.0.0.1 unless told otherwise (--metrics-address).
// The exposition carries pool names, endpoints (host:port) and protocols, never credentials.
//
// Its own thread, with its own io_context, rather than the command's io_context: the
// commands run theirs in bursts (run() until a load is done, restart(), run_for()), so an
// acceptor there would either keep run() from returning or be served only while a load
// runs; on a thread of its own a scrape is answered at any moment of the command, between
// phases too, and never runs inside the measured event loop. The source it calls reads
// stats() of pools and registries, which are thread-safe.
#pragma once

#include <netpool/stats.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netpool::tools {

class command_line;

/// The HTTP handling, without sockets (tested on its own).
namespace metrics_http {

/// The response to `received`, the bytes a client has sent so far: nullopt while the request
/// head (up to the empty line) is incomplete and shorter than `max_request` bytes; otherwise
/// the whole response (status line, headers, body), after which the connection is closed.
/// `exposition` is called only for GET /metrics, once; if it throws, the answer is 500.
std::optional<std::string> respond(std::string_view received, std::size_t max_request,
                                   const std::function<std::string()>& exposition);

}  // namespace metrics_http

/// The endpoint. Listens from construction to destruction; the destructor stops its thread
/// (connections in progress are closed). Thread safety: set_source() may be called from any
/// thread while requests are served.
class metrics_server {
public:
    /// The pools to show, called on the server's thread for every GET /metrics.
    using source = std::function<std::vector<pool_stats>()>;

    struct limits {
        std::size_t max_request = 8 * 1024;          ///< bytes of request head
        std::chrono::milliseconds deadline{5000};    ///< per connection, accept to close
        std::size_t max_connections = 8;             ///< served at once
    };

    /// Binds `address` (an IP address: "127.0.0.1", "::1") and `port` (0: a free port, see
    /// port()) and starts serving. Throws std::system_error (the address is not an IP address,
    /// the port is taken, ...) with a message naming address and port.
    metrics_server(const std::string& address, std::uint16_t port, limits l);
    metrics_server(const std::string& address, std::uint16_t port) : metrics_server(address, port, limits{}) {}
    ~metrics_server();
    metrics_server(const metrics_server&) = delete;
    metrics_server& operator=(const metrics_server&) = delete;

    /// The port it listens on (the one picked when 0 was asked for).
    std::uint16_t port() const noexcept;
    /// "http://127.0.0.1:PORT/metrics" ("http://[::1]:PORT/metrics" for IPv6).
    std::string url() const;
    /// Replaces what GET /metrics shows; an empty source shows no pool (an empty exposition,
    /// e.g. between two phases of a command). Returns once a request using the old source is
    /// done with it, so that what the old source reads may be destroyed right after.
    void set_source(source s);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// Shows `s` on `server` (if not null) for the guard's lifetime: construct it after the
/// pools or registry `s` reads, or reset it before destroying them.
class metrics_publication {
public:
    metrics_publication(metrics_server* server, metrics_server::source s) : server_(server) {
        if (server_) server_->set_source(std::move(s));
    }
    ~metrics_publication() {
        if (server_) server_->set_source({});
    }
    metrics_publication(const metrics_publication&) = delete;
    metrics_publication& operator=(const metrics_publication&) = delete;

private:
    metrics_server* server_;
};

/// The --metrics-port and --metrics-address options of a command.
struct metrics_options {
    std::optional<std::uint16_t> port;  ///< none: no endpoint
    std::string address = "127.0.0.1";

    /// Declares both options on `cl`: --metrics-port takes 0-65535 ("--metrics-port expects
    /// a port number (0-65535; 0: a free one), got 'x'"), --metrics-address an IP address.
    void declare(command_line& cl);
    /// --metrics-address without --metrics-port is a mistake: throws usage_error. Call after
    /// parse().
    void check(const command_line& cl) const;
};

/// The endpoint `o` asks for, or null without --metrics-port; prints
/// "metrics: http://ADDRESS:PORT/metrics" on stderr once it listens. Throws usage_error
/// naming --metrics-port when it cannot listen ("--metrics-port 9100: cannot listen on
/// 127.0.0.1:9100: Address already in use").
std::unique_ptr<metrics_server> start_metrics(const metrics_options& o);

/// The lines of --help for both options (the same in every command).
inline constexpr std::string_view metrics_usage =
    "metrics:\n"
    "  --metrics-port PORT      serve the pools' Prometheus metrics at\n"
    "                           http://127.0.0.1:PORT/metrics while the command runs (0: a\n"
    "                           free port; the URL is printed on stderr); no authentication\n"
    "  --metrics-address ADDR   listen on ADDR instead of 127.0.0.1 (an IP address)\n";

}  // namespace netpool::tools
