// The client: a keyed pool per account; a checkout, EXAMINE (when needed), UID SEARCH,
// UID FETCH, the lease back with its mailbox still selected.
#include <netpool/imap/client.hpp>

#include <netpool/error.hpp>
#include <netpool/pool.hpp>
#include <netpool/transport.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <utility>

// See adapter.cpp: g++ 12's -Wmismatched-new-delete on Asio's coroutine frames is wrong.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace netpool::imap {

namespace {

using pool_handle = keyed_client<adapter>::handle;

pool_handle pool_of(const keyed_client<adapter>& pools, const account& a) {
    a.client.validate();  // before the registry is asked: a bad option never makes a pool
    return pools.acquire(a.server, a.client.cred, a.pool, [&] { return adapter(a.client); });
}

std::string failure_detail(const connection& c) {
    const session* s = adapter::session_state(c);
    return s ? s->last_failure : std::string();
}

std::uint64_t bytes_read(const connection& c) {
    const session* s = adapter::session_state(c);
    return s ? s->io.bytes_read() : 0;
}

asio::awaitable<fetch_result> attempt(const pool_handle& h, const std::string& mailbox, std::size_t top,
                                      fetch_parts parts, bool& reused_connection) {
    fetch_result r;
    auto [ec, leased] = co_await h.checkout();
    lease l = std::move(leased);
    if (ec) {
        r.stage = "checkout";
        auto why = h.explain_checkout_failure(ec, imap_category());
        r.ec = why.ec;
        r.detail = std::move(why.detail);
        co_return r;
    }
    const adapter& ad = h.adapter();
    reused_connection = l->may_be_stale();
    const std::uint64_t read_before = bytes_read(*l);
    // Every return goes through one of these two: the bytes this attempt read are counted
    // while the connection is still ours (before a discard ends it).
    const auto done = [&] {
        r.bytes_read = bytes_read(*l) - read_before;
        return std::move(r);
    };
    const auto fail = [&](std::error_code e, std::string stage) {
        r.bytes_read = bytes_read(*l) - read_before;
        r.ec = e;
        r.stage = std::move(stage);
        r.detail = failure_detail(*l);  // e.g. which limit a hostile server hit, and its value
        if (adapter::must_discard(e)) l.discard();  // BYE, I/O or parse error, timeout: the session is unusable
        return std::move(r);
    };

    const session* before = adapter::session_state(*l);
    const bool reused = before && before->selected && before->selected->name == mailbox && before->selected->read_only;
    if (auto e = co_await ad.select(*l, mailbox, true, &r.mailbox)) co_return fail(e, "EXAMINE");
    if (top == 0) co_return done();
    if (reused && r.mailbox.exists == 0) {
        // An examined mailbox kept from an earlier lease: NOOP brings its EXISTS up to date.
        if (auto e = co_await ad.health_check(*l)) co_return fail(e, "EXAMINE");
        if (const session* s = adapter::session_state(*l); s && s->selected) r.mailbox.exists = s->selected->exists;
    }
    if (r.mailbox.exists == 0) co_return done();

    // The last `top` messages by sequence number ("*" is the last one even if more arrived).
    const std::uint32_t first = r.mailbox.exists > top ? static_cast<std::uint32_t>(r.mailbox.exists - top + 1) : 1;
    std::vector<std::uint32_t> uids;
    if (auto e = co_await ad.uid_search(*l, std::to_string(first) + ":*", uids)) co_return fail(e, "UID SEARCH");
    std::sort(uids.begin(), uids.end(), std::greater<>());
    uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
    if (uids.size() > top) uids.resize(top);
    if (auto e = co_await ad.uid_fetch(*l, uids, r.messages, parts)) co_return fail(e, "UID FETCH");
    if (const session* s = adapter::session_state(*l); s && s->selected) r.mailbox.exists = s->selected->exists;
    co_return done();
}

/// A session that sat in the pool may have been closed by the server meanwhile (an idle
/// timeout, an administrator's kick, a restart): its BYE or EOF shows only at the next
/// command. Such a failure on a connection that may be stale (connection::may_be_stale: it
/// served a lease or waited idle, a base connection nobody used yet included) is retried on
/// another connection (the operation only reads), until a connection opened for the fetch
/// answers or fails: after a restart every pooled session may be dead, so `tries` is the
/// pool's capacity plus one. A failure on a fresh connection is reported as is. The handle
/// is taken by value: it holds the pool (and its adapter) for the whole fetch, also while
/// the registry retires the pool.
asio::awaitable<fetch_result> run(pool_handle h, std::string mailbox, std::size_t top, fetch_parts parts,
                                  std::size_t tries) {
    fetch_result r;
    std::uint64_t read = 0;
    for (std::size_t i = 0; i < tries; ++i) {
        bool stale = false;
        r = co_await attempt(h, mailbox, top, parts, stale);
        read += r.bytes_read;
        if (!stale || (r.ec != errc::server_bye && r.ec != netpool::errc::connection_closed)) break;
    }
    r.bytes_read = read;
    co_return r;
}

}  // namespace

client::client(registry& reg) : pools_(reg) {}
client::~client() = default;

asio::awaitable<fetch_result> client::fetch_latest(const account& a, std::string mailbox, std::size_t top,
                                                   fetch_parts parts) {
    co_return co_await serialized(
        run(pool_of(pools_, a), std::move(mailbox), top, parts, a.pool.size + a.pool.max_overflow + 1));
}

fetch_result client::fetch_latest_blocking(const account& a, std::string mailbox, std::size_t top, fetch_parts parts) {
    pool_handle h = pool_of(pools_, a);
    const auto ex = h.pool().get_executor();
    return run_blocking(ex, run(std::move(h), std::move(mailbox), top, parts, a.pool.size + a.pool.max_overflow + 1),
                        "netpool::imap::client::fetch_latest_blocking");
}

}  // namespace netpool::imap
