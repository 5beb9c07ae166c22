#include <netpool/tools/metrics_server.hpp>

#include <netpool/tools/args.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <algorithm>
#include <memory>
#include <iostream>
#include <mutex>
#include <system_error>
#include <thread>

// See protocols/imap/src/adapter.cpp: g++ 12's -Wmismatched-new-delete on Asio's coroutine
// frames is wrong.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace netpool::tools {

namespace metrics_http {

namespace {

std::string response(std::string_view status, std::string_view content_type, std::string_view body,
                     std::string_view extra_headers = {}) {
    std::string r;
    r.reserve(160 + body.size());
    r += "HTTP/1.1 ";
    r += status;
    r += "\r\nContent-Type: ";
    r += content_type;
    r += "\r\nContent-Length: ";
    r += std::to_string(body.size());
    r += "\r\n";
    r += extra_headers;
    r += "Connection: close\r\n\r\n";
    r += body;
    return r;
}

/// A short status answer with the status as its text.
std::string plain(std::string_view status, std::string_view extra_headers = {}) {
    return response(status, "text/plain; charset=utf-8", std::string(status) + "\n", extra_headers);
}

}  // namespace

std::optional<std::string> respond(std::string_view received, std::size_t max_request,
                                   const std::function<std::string()>& exposition) {
    // The head ends at an empty line; a bare LF is taken for CRLF, as most servers do.
    std::size_t head_end = received.find("\r\n\r\n");
    if (head_end == std::string_view::npos) head_end = received.find("\n\n");
    if (head_end == std::string_view::npos || head_end > max_request) {
        if (received.size() < max_request) return std::nullopt;
        return plain("431 Request Header Fields Too Large");
    }
    std::string_view line = received.substr(0, received.find('\n'));
    if (line.ends_with('\r')) line.remove_suffix(1);
    // METHOD SP TARGET SP HTTP/1.x, nothing else.
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1 || line.find(' ', sp2 + 1) != line.npos)
        return plain("400 Bad Request");
    const std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (!version.starts_with("HTTP/1.") || version.size() != 8) return plain("400 Bad Request");
    if (method != "GET") return plain("405 Method Not Allowed", "Allow: GET\r\n");
    target = target.substr(0, target.find('?'));
    if (target != "/metrics") return plain("404 Not Found");
    std::string body;
    try {
        body = exposition();
    } catch (...) {
        return plain("500 Internal Server Error");
    }
    return response("200 OK", "text/plain; version=0.0.4; charset=utf-8", body);
}

}  // namespace metrics_http

namespace {
using asio::ip::tcp;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);
}  // namespace

// Declared in destruction order: the io_context goes before what its coroutines' frames
// touch when it destroys them (active, the source), after the acceptor on it.
struct metrics_server::impl {
    limits lim;
    std::mutex m;  // guards src, and is held while it is called
    source src;
    std::size_t active = 0;  // connections served now; the server's thread only
    asio::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    std::string address_shown;  // "127.0.0.1", "[::1]"
    std::uint16_t port = 0;
    std::thread thread;

    std::string render() {
        std::vector<pool_stats> pools;
        {
            std::lock_guard g(m);
            if (src) pools = src();
        }
        return to_prometheus(pools);
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, s] = co_await acceptor.async_accept(use_tuple);
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
            if (ec) {
                // Out of descriptors and the like: wait a little instead of spinning.
                asio::steady_timer pause(ioc, std::chrono::milliseconds(100));
                co_await pause.async_wait(use_tuple);
                continue;
            }
            if (active >= lim.max_connections) {
                s.close(ec);
                continue;
            }
            ++active;
            asio::co_spawn(ioc, serve(std::move(s)), asio::detached);
        }
    }

    asio::awaitable<void> serve(tcp::socket accepted) {
        struct count_down {
            std::size_t& n;
            ~count_down() { --n; }
        } counted{active};
        // The whole exchange within the deadline: closing the socket ends any read or write.
        // The timer's handler may already be queued when the exchange ends: it holds the
        // socket weakly, so it closes nothing that is gone.
        const auto sock = std::make_shared<tcp::socket>(std::move(accepted));
        auto& s = *sock;
        asio::steady_timer deadline(ioc, lim.deadline);
        deadline.async_wait([weak = std::weak_ptr<tcp::socket>(sock)](std::error_code ec) {
            if (ec) return;
            if (const auto alive = weak.lock()) alive->close(ec);
        });
        std::string got;
        char buf[2048];
        for (;;) {
            const std::size_t room = std::min(sizeof buf, lim.max_request - std::min(lim.max_request, got.size()));
            auto [ec, n] = co_await s.async_read_some(asio::buffer(buf, std::max<std::size_t>(room, 1)), use_tuple);
            if (ec) co_return;  // the client went away, or the deadline closed the socket
            got.append(buf, n);
            auto reply = metrics_http::respond(got, lim.max_request, [this] { return render(); });
            if (!reply) continue;
            auto [wec, written] = co_await asio::async_write(s, asio::buffer(*reply), use_tuple);
            (void)written;
            if (!wec) s.shutdown(tcp::socket::shutdown_send, wec);
            // A lingering close: closing with unread bytes (a body, the rest of an oversized
            // head) would send a reset that can destroy the response before the client reads
            // it. So read and drop until the client closes, within the deadline and 64 KiB.
            for (std::size_t dropped = 0; !wec && dropped < 64 * 1024;) {
                auto [rec, r] = co_await s.async_read_some(asio::buffer(buf), use_tuple);
                wec = rec;
                dropped += r;
            }
            s.close(wec);
            co_return;
        }
    }
};

metrics_server::metrics_server(const std::string& address, std::uint16_t port, limits l)
    : impl_(std::make_unique<impl>()) {
    impl_->lim = l;
    std::error_code ec;
    const auto addr = asio::ip::make_address(address, ec);
    if (ec) throw std::system_error(ec, "'" + address + "' is not an IP address");
    impl_->address_shown = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
    const std::string where = "cannot listen on " + impl_->address_shown + ":" + std::to_string(port);
    const tcp::endpoint ep(addr, port);
    auto& a = impl_->acceptor;
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::system_error(ec, where);
    impl_->port = a.local_endpoint().port();
    asio::co_spawn(impl_->ioc, impl_->accept_loop(), asio::detached);
    impl_->thread = std::thread([i = impl_.get()] { i->ioc.run(); });
}

metrics_server::~metrics_server() {
    impl_->ioc.stop();
    impl_->thread.join();
    // ~impl: the acceptor closes, then the io_context destroys the coroutines still waiting
    // (their sockets close).
}

std::uint16_t metrics_server::port() const noexcept { return impl_->port; }

std::string metrics_server::url() const {
    return "http://" + impl_->address_shown + ":" + std::to_string(impl_->port) + "/metrics";
}

void metrics_server::set_source(source s) {
    std::lock_guard g(impl_->m);
    impl_->src = std::move(s);
}

void metrics_options::declare(command_line& cl) {
    cl.option("metrics-port", [this](const std::string& v) {
        const auto n = parse_unsigned(v, 0, 65535);
        if (!n) throw command_line::bad_value("metrics-port", "a port number (0-65535; 0: a free one)", v);
        port = static_cast<std::uint16_t>(*n);
    });
    cl.option("metrics-address", [this](const std::string& v) {
        std::error_code ec;
        (void)asio::ip::make_address(v, ec);
        if (ec) throw command_line::bad_value("metrics-address", "an IP address (e.g. 127.0.0.1 or ::1)", v);
        address = v;
    });
}

void metrics_options::check(const command_line& cl) const {
    if (cl.given("metrics-address") && !cl.given("metrics-port"))
        throw usage_error("--metrics-address needs --metrics-port");
}

std::unique_ptr<metrics_server> start_metrics(const metrics_options& o) {
    if (!o.port) return nullptr;
    try {
        auto s = std::make_unique<metrics_server>(o.address, *o.port);
        std::cerr << "metrics: " << s->url() << "\n" << std::flush;
        return s;
    } catch (const std::system_error& e) {
        throw usage_error("--metrics-port " + std::to_string(*o.port) + ": " + e.what());
    }
}

}  // namespace netpool::tools
