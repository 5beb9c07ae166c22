// Adapters with one mistake each, selected by -DCASE_*: each must fail to compile with a
// message that names the hook (tests/compile/run.sh checks the compiler's words).
#include <netpool/pool.hpp>

#include <asio/io_context.hpp>

namespace {

struct base {
    std::string_view name() const { return "bad"; }
    asio::awaitable<std::error_code> handshake(netpool::connection&) const { co_return std::error_code{}; }
    asio::awaitable<std::error_code> reset(netpool::connection&) const { co_return std::error_code{}; }
    asio::awaitable<void> close(netpool::connection&) const { co_return; }
};

#if defined(CASE_MISSING_HEALTH_CHECK)
struct bad : base {};
#elif defined(CASE_WRONG_HEALTH_CHECK_RESULT)
struct bad : base {
    asio::awaitable<bool> health_check(netpool::connection&) const { co_return true; }
};
#elif defined(CASE_NON_CONST_NEEDS_RESET)
struct bad : base {
    asio::awaitable<std::error_code> health_check(netpool::connection&) const { co_return std::error_code{}; }
    bool needs_reset(const netpool::connection&) { return false; }
};
#else
struct bad : base {  // the control: this one is right and must compile
    asio::awaitable<std::error_code> health_check(netpool::connection&) const { co_return std::error_code{}; }
    bool needs_reset(const netpool::connection&) const { return false; }
};
#endif

}  // namespace

int main() {
    asio::io_context io;
    netpool::endpoint ep;
    ep.port = 1;
    netpool::pool p(io.get_executor(), ep, bad{});  // where a user meets the check
    return 0;
}
