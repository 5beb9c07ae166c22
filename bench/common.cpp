#include "common.hpp"

#include <sys/resource.h>

#include <malloc.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

namespace netpool::bench {

std::size_t raise_fd_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return static_cast<std::size_t>(rl.rlim_cur);
}

std::size_t open_fds() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n > 0 ? n - 1 : 0;  // the iterator's own descriptor
}

std::size_t resident_bytes() {
    std::ifstream f("/proc/self/statm");
    std::size_t size = 0, resident = 0;
    f >> size >> resident;
    return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

std::size_t trimmed_resident_bytes() {
    malloc_trim(0);
    return resident_bytes();
}

std::size_t heap_in_use_bytes() {
    const auto m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

const tools::throwaway_pki& test_pki() {
    static const tools::throwaway_pki pki("netpool bench");
    return pki;
}

server_thread::server_thread(bool tls, unsigned threads, echo::server_options extra)
    : work_(ioc_.get_executor()) {
    extra.address = "127.0.0.1";
    if (tls) {
        extra.cert_file = test_pki().cert;
        extra.key_file = test_pki().key;
    }
    server_.emplace(ioc_.get_executor(), extra);
    server_->start();
    for (unsigned i = 0; i < std::max(1u, threads); ++i) threads_.emplace_back([this] { ioc_.run(); });
}

server_thread::~server_thread() {
    server_->stop();
    work_.reset();
    for (auto& t : threads_) t.join();
}

std::uint16_t server_thread::port() const { return server_->port(); }

server_process::server_process(const std::vector<listener>& listeners, unsigned threads) {
    // Made here, before the fork, so the child reuses the parent's files instead of making
    // (and never removing) its own.
    if (std::any_of(listeners.begin(), listeners.end(), [](const listener& l) { return l.tls; })) test_pki();
    threads = std::max(1u, threads);
    tools::child_process::options o;
    o.stdout_pipe = true;
    o.grace = std::chrono::milliseconds(0);  // nothing to say goodbye to: SIGKILL at once
    // The child's whole life: start the listeners, report "ok PORT..." on stdout (an
    // exception: its message on stderr), then serve until killed.
    child_.emplace(
        [&]() -> int {
            asio::io_context ioc(static_cast<int>(threads));
            auto work = asio::make_work_guard(ioc);
            std::vector<std::unique_ptr<echo::server>> servers;
            std::string reply = "ok";
            for (const auto& l : listeners) {
                echo::server_options so;
                so.address = "127.0.0.1";
                so.mode = l.mode;
                so.reset_after = l.reset_after;
                if (l.tls) {
                    so.cert_file = test_pki().cert;
                    so.key_file = test_pki().key;
                }
                servers.push_back(std::make_unique<echo::server>(ioc.get_executor(), so));
                servers.back()->start();
                reply += ' ' + std::to_string(servers.back()->port());
            }
            reply += '\n';
            if (::write(1, reply.data(), reply.size()) != static_cast<ssize_t>(reply.size())) return 1;
            ::close(1);
            std::vector<std::thread> more;
            for (unsigned i = 1; i < threads; ++i) more.emplace_back([&ioc] { ioc.run(); });
            ioc.run();
            return 1;
        },
        o);
    const auto line = child_->read_line(std::chrono::seconds(30));
    if (!line || line->rfind("ok", 0) != 0) {
        const std::string why = child_->stderr_tail();
        child_.reset();
        throw std::runtime_error("echo server process: " + (why.empty() ? std::string("exited early") : why));
    }
    std::istringstream in(line->substr(2));
    unsigned port = 0;
    while (in >> port) ports_.push_back(static_cast<std::uint16_t>(port));
}

}  // namespace netpool::bench
