// The client: one keyed pool per account; a checkout, EXAMINE (when needed), UID SEARCH,
// UID FETCH, the lease back with its mailbox still selected.
#include <netpool/imap/client.hpp>

#include <netpool/error.hpp>
#include <netpool/pool.hpp>
#include <netpool/transport.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>

#include <algorithm>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <stdexcept>

// See adapter.cpp: g++ 12's -Wmismatched-new-delete on Asio's coroutine frames is wrong.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace netpool::imap {

/// The adapter of each pool this client created, so a failed checkout can say what the last
/// handshake failure was. Copies of an adapter share its records, so the copy kept here sees
/// what the pool's copy records (and the UIDVALIDITY each connection saw).
struct client::impl {
    std::mutex mu;
    std::map<pool_key, std::shared_ptr<const adapter>> adapters;
};

namespace {

struct pool_and_adapter {
    std::shared_ptr<pool> p;  // shared: the registry may retire the pool while we use it
    std::shared_ptr<const adapter> ad;
};

pool_and_adapter pool_of(registry& reg, client::impl& m, const account& a) {
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
    // A pool someone else created for this key: use an adapter of our own options (its
    // records are not the pool's, so a checkout failure has less detail).
    if (!out.ad) out.ad = std::make_shared<const adapter>(a.client);
    return out;
}

std::string failure_detail(const connection& c) {
    const session* s = adapter::session_state(c);
    return s ? s->last_failure : std::string();
}

asio::awaitable<fetch_result> attempt(const pool_and_adapter& pa, const std::string& mailbox, std::size_t top,
                                      bool& reused_connection) {
    fetch_result r;
    auto [ec, leased] = co_await pa.p->checkout();
    lease l = std::move(leased);
    if (ec) {
        r.stage = "checkout";
        r.ec = ec;
        if (ec == netpool::condition::endpoint_down || ec == netpool::errc::checkout_timeout) {
            // "Endpoint down" alone does not tell an operator to fix the password: give the
            // cause the pool recorded and what the server said.
            const std::error_code cause = pa.p->last_failure();
            const bool imap_cause = cause && cause.category() == imap_category();
            if (imap_cause) r.ec = cause;
            if (imap_cause || ec == netpool::condition::endpoint_down) {
                r.detail = pa.ad->last_handshake_failure();
                if (r.detail.empty() && cause) r.detail = "last failure: " + cause.message();
            }
        }
        co_return r;
    }
    const adapter& ad = *pa.ad;
    reused_connection = l->uses() > 1;
    const auto fail = [&](std::error_code e, std::string stage) {
        r.ec = e;
        r.stage = std::move(stage);
        r.detail = failure_detail(*l);  // e.g. which limit a hostile server hit, and its value
        if (adapter::must_discard(e)) l.discard();  // BYE, I/O or parse error, timeout: the session is unusable
        return std::move(r);
    };

    const session* before = adapter::session_state(*l);
    const bool reused = before && before->selected && before->selected->name == mailbox && before->selected->read_only;
    if (auto e = co_await ad.select(*l, mailbox, true, &r.mailbox)) co_return fail(e, "EXAMINE");
    if (top == 0) co_return std::move(r);
    if (reused && r.mailbox.exists == 0) {
        // An examined mailbox kept from an earlier lease: NOOP brings its EXISTS up to date.
        if (auto e = co_await ad.health_check(*l)) co_return fail(e, "EXAMINE");
        if (const session* s = adapter::session_state(*l); s && s->selected) r.mailbox.exists = s->selected->exists;
    }
    if (r.mailbox.exists == 0) co_return std::move(r);

    // The last `top` messages by sequence number ("*" is the last one even if more arrived).
    const std::uint32_t first = r.mailbox.exists > top ? static_cast<std::uint32_t>(r.mailbox.exists - top + 1) : 1;
    std::vector<std::uint32_t> uids;
    if (auto e = co_await ad.uid_search(*l, std::to_string(first) + ":*", uids)) co_return fail(e, "UID SEARCH");
    std::sort(uids.begin(), uids.end(), std::greater<>());
    uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
    if (uids.size() > top) uids.resize(top);
    if (auto e = co_await ad.uid_fetch(*l, uids, r.messages)) co_return fail(e, "UID FETCH");
    if (const session* s = adapter::session_state(*l); s && s->selected) r.mailbox.exists = s->selected->exists;
    co_return std::move(r);
}

/// A session that sat in the pool may have been closed by the server meanwhile (an idle
/// timeout, an administrator's kick): its BYE or EOF shows only at the next command. Such a
/// failure on a reused connection is retried once on another connection (the operation
/// only reads); a failure on a fresh one is reported as is.
asio::awaitable<fetch_result> run(pool_and_adapter pa, std::string mailbox, std::size_t top) {
    bool reused = false;
    fetch_result r = co_await attempt(pa, mailbox, top, reused);
    if (reused && (r.ec == errc::server_bye || r.ec == netpool::errc::connection_closed)) {
        bool again = false;
        r = co_await attempt(pa, mailbox, top, again);
    }
    co_return r;
}

}  // namespace

std::string fetch_result::to_string() const {
    if (!ec) {
        std::string s = "fetched " + std::to_string(messages.size()) + " message" + (messages.size() == 1 ? "" : "s") +
                        " from " + mailbox.name + " (" + std::to_string(mailbox.exists) + " in the mailbox)";
        if (mailbox.uidvalidity_changed) s += "; UIDVALIDITY changed";
        return s;
    }
    const std::string what = ec.message();
    std::string s = "failed at " + (stage.empty() ? std::string("?") : stage) + ": " + what;
    // A handshake failure's detail is "STAGE: response" or "STAGE: message": the message
    // need not be said twice.
    std::string extra = detail;
    const std::string repeated = ": " + what;
    if (extra.size() > repeated.size() && extra.compare(extra.size() - repeated.size(), repeated.size(), repeated) == 0)
        extra = "during " + extra.substr(0, extra.size() - repeated.size());
    if (!extra.empty()) s += " (" + extra + ")";
    return s;
}

client::client(registry& reg) : reg_(reg), impl_(std::make_shared<impl>()) {}
client::~client() = default;

asio::awaitable<fetch_result> client::fetch_latest(const account& a, std::string mailbox, std::size_t top) {
    co_return co_await serialized(run(pool_of(reg_, *impl_, a), std::move(mailbox), top));
}

fetch_result client::fetch_latest_blocking(const account& a, std::string mailbox, std::size_t top) {
    auto pa = pool_of(reg_, *impl_, a);
    const auto ex = pa.p->get_executor();
    if (running_in_this_thread(ex))
        throw std::logic_error("netpool::imap::client::fetch_latest_blocking called from a thread running the "
                               "registry's executor: it would wait for itself; use fetch_latest() there");
    auto done = std::make_shared<std::promise<fetch_result>>();
    auto result = done->get_future();
    asio::co_spawn(asio::make_strand(ex), run(std::move(pa), std::move(mailbox), top), [done](std::exception_ptr ep, fetch_result r) {
        if (ep) done->set_exception(ep);
        else done->set_value(std::move(r));
    });
    return result.get();
}

}  // namespace netpool::imap
