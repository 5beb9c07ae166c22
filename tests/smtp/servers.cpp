#include "servers.hpp"

#include <netpool/detail/sha256.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace netpool::test {

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

/// Owns a file descriptor.
struct fd_guard {
    int fd = -1;
    ~fd_guard() {
        if (fd >= 0) ::close(fd);
    }
};

/// A per-process counter so that stderr files of children do not collide.
std::string next_err_path(const std::string& label) {
    static int counter = 0;
    const char* base = std::getenv("NETPOOL_TEST_TMP");
    std::string dir = (base != nullptr && *base != '\0') ? base : "/tmp";
    std::error_code ignored;
    std::filesystem::create_directories(dir, ignored);
    return dir + "/smtp-child-" + std::to_string(::getpid()) + '-' + std::to_string(++counter) + '-' + label +
           ".stderr";
}

int decode_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

}  // namespace

std::string source_dir() {
    if (const char* env = std::getenv("NETPOOL_SOURCE_DIR"); env != nullptr && *env != '\0') return env;
#ifdef NETPOOL_SOURCE_DIR
    return NETPOOL_SOURCE_DIR;
#else
    return ".";
#endif
}

child_process::child_process(std::vector<std::string> argv, std::string label, bool wait_ready,
                             std::chrono::milliseconds timeout)
    : label_(std::move(label)), err_path_(next_err_path(label_)) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw_errno("pipe2");
    out_ = pipefd[0];

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    // The test process holds pool sockets: a child must not keep copies of them open.
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);

    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(pipefd[1]);  // the child's copy is its stdout; EOF on ours means it is gone
    if (rc != 0) {
        ::close(out_);
        out_ = -1;
        pid_ = -1;
        throw std::system_error(rc, std::generic_category(), "posix_spawn " + argv[0]);
    }

    if (!wait_ready) return;
    std::string buffer;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            stop();
            throw std::runtime_error(label_ + ": no READY line within " + std::to_string(timeout.count()) +
                                     " ms; stderr:\n" + stderr_text());
        }
        pollfd p{out_, POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 200)));
        if (n < 0 && errno != EINTR) throw_errno("poll");
        if (n <= 0) continue;
        char chunk[256];
        const ssize_t got = ::read(out_, chunk, sizeof chunk);
        if (got <= 0) {
            const int st = stop();
            throw std::runtime_error(label_ + ": exited (status " + std::to_string(st) +
                                     ") before READY; stderr:\n" + stderr_text());
        }
        buffer.append(chunk, static_cast<std::size_t>(got));
        if (auto pos = buffer.find("READY "); pos != std::string::npos) {
            if (auto eol = buffer.find('\n', pos); eol != std::string::npos) {
                port_ = static_cast<std::uint16_t>(std::stoul(buffer.substr(pos + 6, eol - pos - 6)));
                return;
            }
        }
    }
}

child_process::~child_process() {
    stop();
    if (out_ >= 0) ::close(out_);
    std::remove(err_path_.c_str());
}

int child_process::stop(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            status_ = decode_status(status);
            break;
        }
        if (r < 0 && errno != EINTR) {
            status_ = -1;
            break;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            status_ = -1;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    return status_;
}

std::string child_process::stderr_text() const { return read_file(err_path_); }

std::uint16_t free_port() {
    fd_guard s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (s.fd < 0) throw_errno("socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw_errno("bind");
    socklen_t len = sizeof a;
    if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) throw_errno("getsockname");
    return ntohs(a.sin_port);
}

bool wait_listening(std::uint16_t port, std::chrono::milliseconds timeout) {
    return wait_for(
        [port] {
            fd_guard s{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
            if (s.fd < 0) return false;
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(port);
            return ::connect(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        },
        timeout);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string sha256_hex(const std::string& bytes) {
    const auto d = netpool::detail::sha256::hash(bytes);
    return netpool::detail::to_hex(d.data(), d.size());
}

}  // namespace netpool::test
