// The mailer: a keyed pool per account, a checkout, one transaction, the lease back.
#include <netpool/smtp/mailer.hpp>

#include <netpool/error.hpp>
#include <netpool/pool.hpp>
#include <netpool/time.hpp>
#include <netpool/transport.hpp>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <random>
#include <utility>

namespace netpool::smtp {

namespace {

using pool_handle = keyed_client<adapter>::handle;

pool_handle pool_of(const keyed_client<adapter>& pools, const account& a) {
    a.client.validate();  // before the registry is asked: a bad option never makes a pool
    a.retry.validate();
    return pools.acquire(a.server, a.client.cred, a.pool, [&] { return adapter(a.client); });
}

/// One transaction: a checkout (waiting at most `checkout_timeout`), the send, the lease back.
asio::awaitable<send_result> attempt(const pool_handle& h, const envelope& e, const std::string& raw,
                                     std::chrono::milliseconds checkout_timeout) {
    auto [ec, l] = co_await h.pool().checkout(checkout_timeout);
    if (ec) {
        send_result r;
        r.stage = "checkout";
        auto why = h.explain_checkout_failure(ec, smtp_category());
        r.ec = why.ec;
        r.detail = std::move(why.detail);
        if (why.protocol_cause) r.last_reply = h.adapter().last_handshake_reply();
        co_return r;
    }
    send_result r = co_await h.adapter().send(*l, e, raw);
    if (r.discard_connection()) l.discard();
    co_return r;
}

double draw() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// g++ 12's false -Wmismatched-new-delete on Asio's coroutine frame allocator, as in
// adapter.cpp (which says why the pair does match).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
/// The attempts of one message (send_tracker decides, this waits and does). The handle is
/// taken by value: it holds the pool (and its adapter) for the whole send, also while the
/// registry retires the pool.
asio::awaitable<send_result> run(pool_handle h, retry_policy p, const envelope& e, std::string raw) {
    using clock = std::chrono::steady_clock;
    const auto deadline = detail::later(clock::now(), p.deadline);
    const auto pool_timeout = h.pool().default_timeout();
    send_tracker t(e, p);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    unsigned waits = 0;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        const auto checkout_timeout = std::clamp(left, std::chrono::milliseconds(1), pool_timeout);
        const retry_step step = t.record(co_await attempt(h, t.next_envelope(), raw, checkout_timeout));
        if (step == retry_step::done) break;
        const unsigned n = step == retry_step::again ? t.attempts() + 1 : ++waits + 1;
        const auto delay = retry_delay(p, n, draw());
        if (clock::now() + delay >= deadline) break;  // no attempt starts after the deadline
        timer.expires_after(delay);
        co_await timer.async_wait(asio::use_awaitable);
    }
    co_return t.result();
}
#pragma GCC diagnostic pop

}  // namespace

mailer::mailer(registry& reg) : pools_(reg) {}
mailer::~mailer() = default;

asio::awaitable<send_result> mailer::send(const account& a, const message& m) {
    const envelope e = m.make_envelope();
    std::string raw = m.render(a.client.helo_name);
    co_return co_await serialized(run(pool_of(pools_, a), a.retry, e, std::move(raw)));
}

asio::awaitable<send_result> mailer::send(const account& a, const envelope& e, std::string raw_rfc5322) {
    co_return co_await serialized(run(pool_of(pools_, a), a.retry, e, std::move(raw_rfc5322)));
}

send_result mailer::send_blocking(const account& a, const message& m) {
    const envelope e = m.make_envelope();
    return send_blocking(a, e, m.render(a.client.helo_name));
}

send_result mailer::send_blocking(const account& a, const envelope& e, std::string raw_rfc5322) {
    pool_handle h = pool_of(pools_, a);
    const auto ex = h.pool().get_executor();
    return run_blocking(ex, run(std::move(h), a.retry, e, std::move(raw_rfc5322)), "netpool::smtp::mailer::send_blocking");
}

}  // namespace netpool::smtp
