// The client: one keyed pool per account; a checkout, the command, the lease back.
#include <netpool/redis/client.hpp>

#include <netpool/error.hpp>
#include <netpool/pool.hpp>
#include <netpool/transport.hpp>

// See adapter.cpp: g++ 12's -Wmismatched-new-delete on Asio's coroutine frames is wrong.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace netpool::redis {

namespace {

/// `tries`: connections to try. A connection the server closed is replaced before anything
/// is sent; every connection of the pool may be such a one after a restart. The peek is one
/// non-blocking recv (well under a microsecond against a round trip of tens) and runs on
/// every lease, a new one too: a connection is accepted by the server's kernel before the
/// pool hears of it, so one made just before the server died (or whose completion a busy
/// event loop ran late) is dead although it served nothing and never waited idle.
asio::awaitable<result> run(keyed_client<adapter>::handle h, std::vector<std::string> args, std::size_t tries) {
    result r;
    for (std::size_t i = 0; i < tries; ++i) {
        auto [ec, l] = co_await h.checkout();
        if (ec) {
            auto why = h.explain_checkout_failure(ec, redis_category());
            r.stage = "checkout";
            r.ec = why.ec;
            r.detail = std::move(why.detail);
            co_return r;
        }
        if (adapter::peer_closed(*l)) {
            l.discard();
            continue;
        }
        r.ec = co_await h.adapter().command(*l, args, r.value);
        if (r.ec == errc::server_error) r.detail = r.value.to_string();
        if (adapter::must_discard(r.ec)) {
            r.detail = adapter::last_failure(*l);
            l.discard();
        }
        if (r.ec) r.stage = "command";
        co_return r;
    }
    r.stage = "checkout";
    r.ec = netpool::errc::connection_closed;
    r.detail = "every pooled connection tried had been closed by the server";
    co_return r;
}

}  // namespace

std::string result::to_string() const {
    if (!ec) return value.to_string();
    std::string s = "failed at " + (stage.empty() ? std::string("?") : stage) + ": " + ec.message();
    if (!detail.empty()) s += " (" + detail + ")";
    return s;
}

keyed_client<adapter>::handle client::pool_for(const account& a) const {
    a.client.validate();
    return pools_.acquire(a.server, a.client.cred, a.pool, [&] { return adapter(a.client); });
}

asio::awaitable<result> client::command(const account& a, std::vector<std::string> args) const {
    co_return co_await serialized(run(pool_for(a), std::move(args), a.pool.size + a.pool.max_overflow + 1));
}

result client::command_blocking(const account& a, std::vector<std::string> args) const {
    auto h = pool_for(a);
    const auto ex = h.pool().get_executor();
    return run_blocking(ex, run(std::move(h), std::move(args), a.pool.size + a.pool.max_overflow + 1),
                        "netpool::redis::client::command_blocking");
}

}  // namespace netpool::redis
