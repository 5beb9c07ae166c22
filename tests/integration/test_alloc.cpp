// The checkout fast path allocates nothing: counted with a replacement of the global
// operator new (for this whole test binary; it only counts).
#include "support.hpp"

#include <netpool/netpool.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/echo/server.hpp>

#include <asio/io_context.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<std::uint64_t> allocations{0};
}  // namespace

// g++ 12 sees malloc/free behind new/delete after inlining and warns about a mismatch that
// is not one.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
// The nothrow forms too (std::stable_sort's temporary buffer uses them): a replacement set
// must be complete, or memory from the library's new reaches our delete (ASan:
// alloc-dealloc-mismatch).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return std::malloc(n ? n : 1);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace netpool;
using namespace std::chrono_literals;

TEST_CASE("the uncontended checkout + checkin allocates nothing") {
    test::server_thread srv;
    asio::io_context ioc;
    endpoint ep;
    ep.port = srv.port();
    pool_options o;
    o.size = 2;
    o.max_overflow = 0;
    pool p(ioc.get_executor(), ep, echo::adapter{}, o, "alloc");
    test::run(ioc, [&]() -> asio::awaitable<void> {
        asio::steady_timer t(co_await asio::this_coro::executor);
        while (p.stats().idle < 2) {
            t.expires_after(5ms);
            co_await t.async_wait(asio::use_awaitable);
        }
        // Warm: the first leases of each connection (sampled timing included).
        for (int i = 0; i < 64; ++i) {
            auto [ec, l] = co_await p.checkout(1s);
            REQUIRE_FALSE(ec);
        }
        // No doctest macro inside the measured loops: only the pool's own work is counted.
        int failures = 0;
        const auto before = allocations.load();
        std::error_code ec;
        for (int i = 0; i < 10000; ++i) {
            lease a = p.try_checkout(ec);
            lease b = p.try_checkout(ec);
            failures += !a + !b;
        }
        for (int i = 0; i < 10000; ++i) {
            auto [e, l] = co_await p.checkout(1s);  // takes a free one without suspending
            failures += e ? 1 : 0;
        }
        const auto allocated = allocations.load() - before;
        CHECK(failures == 0);
        CHECK(allocated == 0);
    }());
}
