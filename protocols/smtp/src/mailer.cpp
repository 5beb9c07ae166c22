// The mailer: one keyed pool per account, a checkout, one transaction, the lease back.
#include <netpool/smtp/mailer.hpp>

#include <netpool/error.hpp>
#include <netpool/pool.hpp>
#include <netpool/transport.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>

namespace netpool::smtp {

/// The adapter of each pool this mailer created, so a failed checkout can say what the
/// last handshake failure was. Copies of an adapter share its failure record, so the copy
/// kept here sees what the pool's copy records.
struct mailer::impl {
    std::mutex mu;
    std::map<pool_key, std::shared_ptr<const adapter>> adapters;
};

namespace {

struct pool_and_adapter {
    std::shared_ptr<pool> p;  // shared: the registry may retire the pool while we use it
    std::shared_ptr<const adapter> ad;
};

pool_and_adapter pool_of(registry& reg, mailer::impl& m, const account& a) {
    a.client.validate();
    const pool_key key = pool_key::make(a.server, a.client.cred);
    pool_and_adapter out;
    out.p = reg.pool_for(
        a.server, a.client.cred,
        [&]() {
            auto ad = std::make_shared<const adapter>(a.client);
            {
                std::lock_guard lk(m.mu);
                m.adapters[key] = ad;
            }
            return any_adapter(*ad);
        },
        a.pool);
    {
        std::lock_guard lk(m.mu);
        if (auto it = m.adapters.find(key); it != m.adapters.end()) out.ad = it->second;
    }
    // A pool someone else created for this key: send with an adapter of our own options
    // (its failure record is not the pool's, so a checkout failure has less detail).
    if (!out.ad) out.ad = std::make_shared<const adapter>(a.client);
    return out;
}

asio::awaitable<send_result> run(pool_and_adapter pa, const envelope& e, std::string raw) {
    auto [ec, l] = co_await pa.p->checkout();
    if (ec) {
        send_result r;
        r.stage = "checkout";
        r.ec = ec;
        if (ec == netpool::condition::endpoint_down || ec == netpool::errc::checkout_timeout) {
            // "Endpoint down" alone does not tell an operator to fix the password: give the
            // cause the pool recorded and what the server said.
            const std::error_code cause = pa.p->last_failure();
            const bool smtp_cause = cause && cause.category() == smtp_category();
            if (smtp_cause) r.ec = cause;
            if (smtp_cause || ec == netpool::condition::endpoint_down) r.detail = pa.ad->last_handshake_failure();
            if (smtp_cause) r.last_reply = pa.ad->last_handshake_reply();
            // A checkout that timed out while workers kept failing (e.g. a server that never
            // greets): say why, whatever the category of the cause.
            if (r.detail.empty() && cause) r.detail = "last failure: " + cause.message();
        }
        co_return r;
    }
    send_result r = co_await pa.ad->send(*l, e, raw);
    if (r.discard_connection()) l.discard();
    co_return r;
}

send_result wait_for(asio::any_io_executor ex, asio::awaitable<send_result> op) {
    if (running_in_this_thread(ex))
        throw std::logic_error("netpool::smtp::mailer::send_blocking called from a thread running the registry's "
                               "executor: it would wait for itself; use send() there");
    auto done = std::make_shared<std::promise<send_result>>();
    auto result = done->get_future();
    asio::co_spawn(asio::make_strand(ex), std::move(op), [done](std::exception_ptr ep, send_result r) {
        if (ep) done->set_exception(ep);
        else done->set_value(std::move(r));
    });
    return result.get();
}

}  // namespace

mailer::mailer(registry& reg) : reg_(reg), impl_(std::make_shared<impl>()) {}
mailer::~mailer() = default;

asio::awaitable<send_result> mailer::send(const account& a, const message& m) {
    const envelope e = m.make_envelope();
    std::string raw = m.render(a.client.helo_name);
    co_return co_await serialized(run(pool_of(reg_, *impl_, a), e, std::move(raw)));
}

asio::awaitable<send_result> mailer::send(const account& a, const envelope& e, std::string raw_rfc5322) {
    co_return co_await serialized(run(pool_of(reg_, *impl_, a), e, std::move(raw_rfc5322)));
}

send_result mailer::send_blocking(const account& a, const message& m) {
    const envelope e = m.make_envelope();
    return send_blocking(a, e, m.render(a.client.helo_name));
}

send_result mailer::send_blocking(const account& a, const envelope& e, std::string raw_rfc5322) {
    auto pa = pool_of(reg_, *impl_, a);
    const auto ex = pa.p->get_executor();
    return wait_for(ex, run(std::move(pa), e, std::move(raw_rfc5322)));
}

}  // namespace netpool::smtp
