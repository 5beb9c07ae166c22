// Checkout and checkin without I/O in the measured loop: the pool's own overhead.
//
//   checkout/uncontended/try        try_checkout + release on one thread (the fast path)
//   checkout/uncontended/coroutine  co_await pool.checkout() + release inside one coroutine
//   checkout/contended/threads:2    two threads doing try_checkout + release on one pool of 2
//   checkout/handoff                a returned connection handed to a parked waiter (two
//                                   coroutines taking turns on a pool of 1): one handoff per
//                                   iteration, including the completion's post and resume
//   checkout/blocking               checkout_blocking + release from a plain thread while
//                                   another thread runs the io_context
//
// Counters: allocs_per_cycle counts calls of the global operator new during the measured
// loop (this binary replaces it with a counting one), so "the fast path allocates nothing"
// is measured, not asserted. The connections are real (netpool's echo server on loopback)
// but are not used inside the loop.
#include "common.hpp"

#include <netpool/netpool.hpp>
#include <netpool/echo/adapter.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

namespace {
std::atomic<std::uint64_t> allocations{0};
}  // namespace

// A counting replacement of the global allocation functions. g++ 12 sees malloc/free behind
// new/delete after inlining and warns about a mismatch that is not one.
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
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace netpool;
using namespace std::chrono_literals;

pool_options opts(std::size_t size) {
    pool_options o;
    o.size = size;
    o.max_overflow = 0;
    o.health_check_after_idle = 0ms;  // no I/O on checkout: the loop measures the pool alone
    return o;
}

endpoint target(std::uint16_t port) {
    endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = port;
    return ep;
}

/// Runs `ioc` until the pool has `n` idle connections.
void warm(asio::io_context& ioc, pool& p, std::size_t n) {
    while (p.stats().idle < n) ioc.run_one_for(10ms);
}

void set_allocs(benchmark::State& state, std::uint64_t before) {
    const auto cycles = static_cast<double>(state.iterations());
    state.counters["allocs_per_cycle"] =
        cycles > 0 ? static_cast<double>(allocations.load() - before) / cycles : 0.0;
}

void uncontended_try(benchmark::State& state) {
    bench::server_thread srv(false);
    asio::io_context ioc;
    pool p(ioc.get_executor(), target(srv.port()), echo::adapter{}, opts(1), "bench");
    warm(ioc, p, 1);
    std::error_code ec;
    const auto before = allocations.load();
    for (auto _ : state) {
        lease l = p.try_checkout(ec);
        benchmark::DoNotOptimize(l);
        if (!l) {
            state.SkipWithError(("try_checkout failed: " + ec.message()).c_str());
            break;
        }
    }
    set_allocs(state, before);
    p.close();
    ioc.run_for(100ms);
}

void uncontended_coroutine(benchmark::State& state) {
    bench::server_thread srv(false);
    asio::io_context ioc;
    pool p(ioc.get_executor(), target(srv.port()), echo::adapter{}, opts(1), "bench");
    warm(ioc, p, 1);
    std::uint64_t before = 0;
    std::error_code failure;
    bool finished = false;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            before = allocations.load();
            for (auto _ : state) {
                auto [ec, l] = co_await p.checkout(1s);
                benchmark::DoNotOptimize(l);
                if (ec) {
                    failure = ec;
                    break;
                }
            }
            finished = true;
        },
        asio::detached);
    while (!finished) ioc.run_one();  // the pool's idle worker keeps run() from returning
    if (failure) state.SkipWithError(("checkout failed: " + failure.message()).c_str());
    set_allocs(state, before);
    p.close();
    ioc.restart();
    ioc.run_for(100ms);
}

// Shared across the threads of one contended run.
struct contended_fixture {
    std::unique_ptr<bench::server_thread> srv;
    std::unique_ptr<asio::io_context> ioc;
    std::unique_ptr<pool> p;
    std::uint64_t allocs_before = 0;
};
contended_fixture contended;

void contended_threads(benchmark::State& state) {
    if (state.thread_index() == 0) {
        contended.srv = std::make_unique<bench::server_thread>(false);
        contended.ioc = std::make_unique<asio::io_context>();
        contended.p = std::make_unique<pool>(contended.ioc->get_executor(), target(contended.srv->port()),
                                             echo::adapter{}, opts(static_cast<std::size_t>(state.threads())),
                                             "bench");
        warm(*contended.ioc, *contended.p, static_cast<std::size_t>(state.threads()));
        contended.allocs_before = allocations.load();
    }
    std::uint64_t misses = 0;
    for (auto _ : state) {
        std::error_code ec;
        lease l = contended.p->try_checkout(ec);
        benchmark::DoNotOptimize(l);
        if (!l) ++misses;  // the other thread's connection is counted as a miss, not an error
    }
    state.counters["misses"] = benchmark::Counter(static_cast<double>(misses), benchmark::Counter::kAvgThreads);
    if (state.thread_index() == 0) {
        // Other threads may still be in their loop; the count is approximate by a few cycles.
        set_allocs(state, contended.allocs_before);
        contended.p->close();
        contended.ioc->run_for(100ms);
        contended.p.reset();
        contended.ioc.reset();
        contended.srv.reset();
    }
}

void handoff(benchmark::State& state) {
    bench::server_thread srv(false);
    asio::io_context ioc;
    pool p(ioc.get_executor(), target(srv.port()), echo::adapter{}, opts(1), "bench");
    warm(ioc, p, 1);
    // Two coroutines take turns on one connection: A holds it, B waits; A releases (direct
    // handoff to B), then asks again and waits; B releases; and so on. Each release with a
    // parked waiter is one handoff.
    bool done = false;
    std::uint64_t handoffs = 0;
    std::error_code failure;
    auto player = [&]() -> asio::awaitable<void> {
        while (!done) {
            auto [ec, l] = co_await p.checkout(5s);
            if (ec) {
                failure = ec;
                done = true;
                co_return;
            }
            ++handoffs;
            // Give the other player time to queue before this lease goes back.
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        }
    };
    std::uint64_t before = 0;
    asio::co_spawn(ioc, player(), asio::detached);
    asio::co_spawn(ioc, player(), asio::detached);
    for (int i = 0; i < 100; ++i) ioc.run_one();  // warm the recycled frames
    const auto h0 = handoffs;
    before = allocations.load();
    for (auto _ : state) {
        const auto target_count = handoffs + 1;
        while (handoffs < target_count && !done) ioc.run_one();
    }
    set_allocs(state, before);
    state.counters["handoffs"] = static_cast<double>(handoffs - h0);
    done = true;
    if (failure) state.SkipWithError(("checkout failed: " + failure.message()).c_str());
    p.close();
    ioc.run_for(200ms);
}

void blocking(benchmark::State& state) {
    bench::server_thread srv(false);
    asio::io_context ioc;
    auto work = asio::make_work_guard(ioc);
    pool p(ioc.get_executor(), target(srv.port()), echo::adapter{}, opts(1), "bench");
    std::thread runner([&] { ioc.run(); });
    while (p.stats().idle < 1) std::this_thread::sleep_for(1ms);  // setup only, not measured
    const auto before = allocations.load();
    for (auto _ : state) {
        std::error_code ec;
        lease l = p.checkout_blocking(1s, ec);
        benchmark::DoNotOptimize(l);
        if (ec) {
            state.SkipWithError(("checkout_blocking failed: " + ec.message()).c_str());
            break;
        }
    }
    set_allocs(state, before);
    p.close();
    work.reset();
    ioc.stop();
    runner.join();
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::RegisterBenchmark("checkout/uncontended/try", uncontended_try);
    benchmark::RegisterBenchmark("checkout/uncontended/coroutine", uncontended_coroutine);
    benchmark::RegisterBenchmark("checkout/contended", contended_threads)->Threads(2)->UseRealTime();
    benchmark::RegisterBenchmark("checkout/handoff", handoff);
    benchmark::RegisterBenchmark("checkout/blocking", blocking);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
