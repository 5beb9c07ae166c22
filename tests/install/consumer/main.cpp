// An out-of-tree program (tests/install/run.sh): built from nothing but what `meson install`
// put in place, found through pkg-config (netpool, netpool-echo) or the CMake package; and
// built with netpool as a Meson subproject. Exit status 0 when one checkout and one echo
// request through a pool to an in-process echo server work.
#include <netpool/pool.hpp>
#include <netpool/echo/adapter.hpp>
#include <netpool/echo/server.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <iostream>
#include <string>
#include <system_error>

namespace {

asio::awaitable<std::error_code> one_request(netpool::pool& pool, const netpool::echo::adapter& echo) {
    auto [ec, lease] = co_await pool.checkout(std::chrono::seconds(5));
    if (ec) co_return ec;
    std::string reply;
    if ((ec = co_await echo.request(*lease, "installed", reply))) {
        lease.discard();
        co_return ec;
    }
    co_return reply == "installed" ? std::error_code{} : make_error_code(netpool::errc::protocol_error);
}

}  // namespace

int main() {
    asio::io_context io;
    netpool::echo::server server(io.get_executor(), {});
    server.start();

    netpool::endpoint ep;
    ep.port = server.port();
    netpool::pool_options opts;
    opts.size = 1;
    opts.max_overflow = 0;
    const netpool::echo::adapter echo;
    netpool::pool pool(io.get_executor(), ep, echo, opts);

    int status = 1;
    asio::co_spawn(io, one_request(pool, echo), [&](std::exception_ptr e, std::error_code ec) {
        if (e) std::cerr << "consumer: exception\n";
        else if (ec) std::cerr << "consumer: " << ec.message() << '\n';
        else status = 0;
        pool.async_drain(std::chrono::seconds(1), [&](std::error_code) { server.stop(); });
    });
    io.run();
    if (status == 0) std::cout << "consumer: checkout and echo through netpool: ok\n";
    return status;
}
