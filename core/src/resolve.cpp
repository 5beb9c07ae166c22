// The first network step: a host name's addresses (looked up, or reused for dns_refresh) and
// a TCP connect to the first that answers. Internal to connect_transport (transport.cpp);
// see detail/resolve.hpp.
#include <netpool/detail/resolve.hpp>

#include <netpool/transport.hpp>

#include <asio/connect.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/address.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace netpool {
namespace detail {

namespace {

using asio::ip::tcp;
constexpr auto use_tuple = asio::experimental::as_tuple(asio::use_awaitable);

bool cancelled(const asio::cancellation_state& cs) noexcept {
    return cs.cancelled() != asio::cancellation_type::none;
}

/// The resolver's background lookup (getaddrinfo) cannot be interrupted, and a
/// parallel_group waits for every member to finish, so a timeout could not return before
/// the system resolver gave up. The lookup therefore completes into shared state that
/// outlives this coroutine, and the coroutine waits on a timer that the lookup cancels:
/// a timeout or a caller's cancellation returns at once and leaves the lookup to finish
/// (and be discarded) in the background.
struct resolve_state {
    explicit resolve_state(const asio::any_io_executor& ex) : resolver(ex), done(ex) {}
    tcp::resolver resolver;
    asio::steady_timer done;
    std::error_code ec;
    tcp::resolver::results_type results;
    bool finished = false;
};

/// Resolved addresses kept for dns_refresh (process-wide, by "host:port").
struct dns_cache {
    struct entry {
        tcp::resolver::results_type results;
        std::chrono::steady_clock::time_point at;
    };
    std::mutex mu;
    std::map<std::string, entry, std::less<>> entries;
    std::atomic<std::uint64_t> lookups{0};

    std::optional<tcp::resolver::results_type> fresh(const std::string& key, std::chrono::milliseconds refresh) {
        std::lock_guard lk(mu);
        const auto it = entries.find(key);
        if (it == entries.end()) return std::nullopt;
        if (std::chrono::steady_clock::now() - it->second.at >= refresh) {
            entries.erase(it);
            return std::nullopt;
        }
        return it->second.results;
    }
    void store(const std::string& key, const tcp::resolver::results_type& r) {
        std::lock_guard lk(mu);
        entries[key] = entry{r, std::chrono::steady_clock::now()};
    }
    void drop(const std::string& key) {
        std::lock_guard lk(mu);
        entries.erase(key);
    }
};

dns_cache& resolved() {
    static dns_cache c;
    return c;
}

}  // namespace

asio::awaitable<std::error_code> resolve_and_connect(tcp::socket& sock, const std::string& host,
                                                     std::uint16_t port, std::chrono::milliseconds dns_refresh) {
    // An IP literal needs no lookup; this is also the common case in tests and benchmarks.
    std::error_code parse_ec;
    const auto address = asio::ip::make_address(host, parse_ec);
    if (!parse_ec) {
        const tcp::endpoint target(address, port);
        auto [ec] = co_await sock.async_connect(target, use_tuple);
        co_return ec;
    }

    const std::string key = host + ':' + std::to_string(port);
    if (dns_refresh.count() > 0) {
        if (auto cached = resolved().fresh(key, dns_refresh)) {
            auto [ec, connected_to] = co_await asio::async_connect(sock, *cached, use_tuple);
            (void)connected_to;
            if (ec && ec != asio::error::operation_aborted) resolved().drop(key);  // the host may have moved
            co_return ec;
        }
    }

    const auto ex = co_await asio::this_coro::executor;
    ++resolved().lookups;
    auto st = std::make_shared<resolve_state>(ex);
    st->done.expires_at(asio::steady_timer::time_point::max());
    st->resolver.async_resolve(host, std::to_string(port),
                               [st](const std::error_code& ec, tcp::resolver::results_type results) {
                                   st->ec = ec;
                                   st->results = std::move(results);
                                   st->finished = true;
                                   st->done.cancel();
                               });
    co_await st->done.async_wait(use_tuple);
    if (!st->finished) {
        // Our wait was cancelled from outside (timeout or caller): abandon the lookup.
        st->resolver.cancel();
        co_return asio::error::operation_aborted;
    }
    if (st->ec) co_return st->ec;
    if (cancelled(co_await asio::this_coro::cancellation_state)) co_return asio::error::operation_aborted;

    if (dns_refresh.count() > 0) resolved().store(key, st->results);
    auto [ec, connected_to] = co_await asio::async_connect(sock, st->results, use_tuple);
    (void)connected_to;
    if (ec && dns_refresh.count() > 0 && ec != asio::error::operation_aborted) resolved().drop(key);
    co_return ec;
}

}  // namespace detail

std::uint64_t dns_lookups() noexcept { return detail::resolved().lookups.load(); }

}  // namespace netpool
