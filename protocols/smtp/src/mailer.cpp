// The mailer: a keyed pool per account, a checkout, one transaction, the lease back.
#include <netpool/smtp/mailer.hpp>

#include <netpool/error.hpp>
#include <netpool/pool.hpp>
#include <netpool/transport.hpp>

#include <utility>

namespace netpool::smtp {

namespace {

using pool_handle = keyed_client<adapter>::handle;

pool_handle pool_of(const keyed_client<adapter>& pools, const account& a) {
    a.client.validate();  // before the registry is asked: a bad option never makes a pool
    return pools.acquire(a.server, a.client.cred, a.pool, [&] { return adapter(a.client); });
}

/// The handle is taken by value: it holds the pool (and its adapter) for the whole send,
/// also while the registry retires the pool.
asio::awaitable<send_result> run(pool_handle h, const envelope& e, std::string raw) {
    auto [ec, l] = co_await h.checkout();
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

}  // namespace

mailer::mailer(registry& reg) : pools_(reg) {}
mailer::~mailer() = default;

asio::awaitable<send_result> mailer::send(const account& a, const message& m) {
    const envelope e = m.make_envelope();
    std::string raw = m.render(a.client.helo_name);
    co_return co_await serialized(run(pool_of(pools_, a), e, std::move(raw)));
}

asio::awaitable<send_result> mailer::send(const account& a, const envelope& e, std::string raw_rfc5322) {
    co_return co_await serialized(run(pool_of(pools_, a), e, std::move(raw_rfc5322)));
}

send_result mailer::send_blocking(const account& a, const message& m) {
    const envelope e = m.make_envelope();
    return send_blocking(a, e, m.render(a.client.helo_name));
}

send_result mailer::send_blocking(const account& a, const envelope& e, std::string raw_rfc5322) {
    pool_handle h = pool_of(pools_, a);
    const auto ex = h.pool().get_executor();
    return run_blocking(ex, run(std::move(h), e, std::move(raw_rfc5322)), "netpool::smtp::mailer::send_blocking");
}

}  // namespace netpool::smtp
