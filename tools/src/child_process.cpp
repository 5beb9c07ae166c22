#include <netpool/tools/child_process.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>

namespace netpool::tools {

namespace {

using clock_type = std::chrono::steady_clock;

std::runtime_error failed(const char* call) {
    return std::runtime_error(std::string("child_process: ") + call + " failed: " + std::strerror(errno));
}

int anonymous_file() {
    const int fd = ::open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) throw failed("open(/tmp, O_TMPFILE)");
    return fd;
}

std::string read_file(int fd) {
    std::string s;
    if (fd < 0) return s;
    char buf[4096];
    off_t at = 0;
    while (true) {
        const auto n = ::pread(fd, buf, sizeof buf, at);
        if (n <= 0) break;
        s.append(buf, static_cast<std::size_t>(n));
        at += n;
    }
    return s;
}

void write_all(int fd, std::string_view s) {
    while (!s.empty()) {
        const auto n = ::write(fd, s.data(), s.size());
        if (n <= 0) return;
        s.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace

child_process::child_process(const std::vector<std::string>& argv, options o) {
    if (argv.empty()) throw std::invalid_argument("child_process: no program");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    start(
        [&args] {
            ::execv(args[0], args.data());
            static constexpr char msg[] = "exec failed\n";
            [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
            ::_exit(127);
        },
        o);
}

child_process::child_process(const std::function<int()>& body, options o) {
    start(
        [&body] {
            int rc = 1;
            try {
                rc = body();
            } catch (const std::exception& e) {
                write_all(2, std::string(e.what()) + "\n");
            }
            std::fflush(nullptr);
            // _exit, not exit: the parent's static destructors (temporary directories) are
            // not the child's to run.
            ::_exit(rc);
        },
        o);
}

void child_process::start(const std::function<void()>& in_child, const options& o) {
    opts_ = o;
    if (!o.stdout_pipe) out_file_ = anonymous_file();
    err_file_ = anonymous_file();
    int pipe_fds[2] = {-1, -1};
    if (o.stdout_pipe && ::pipe2(pipe_fds, O_CLOEXEC) != 0) throw failed("pipe2");
    const pid_t parent = ::getpid();
    std::fflush(nullptr);  // or the child would inherit, and could repeat, unflushed output
    pid_ = ::fork();
    if (pid_ < 0) {
        for (int fd : pipe_fds)
            if (fd >= 0) ::close(fd);
        throw failed("fork");
    }
    if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, o.death_signal);
        if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
        const int devnull = ::open("/dev/null", O_RDONLY);
        ::dup2(devnull, 0);
        ::dup2(o.stdout_pipe ? pipe_fds[1] : out_file_, 1);
        ::dup2(err_file_, 2);
        in_child();
        ::_exit(127);
    }
    if (o.stdout_pipe) {
        ::close(pipe_fds[1]);
        out_pipe_ = pipe_fds[0];
    }
}

child_process::child_process(child_process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      out_file_(std::exchange(other.out_file_, -1)),
      err_file_(std::exchange(other.err_file_, -1)),
      out_pipe_(std::exchange(other.out_pipe_, -1)),
      reaped_(std::exchange(other.reaped_, true)),
      status_(other.status_),
      signal_(other.signal_),
      opts_(other.opts_),
      pending_(std::move(other.pending_)) {}

child_process::~child_process() {
    stop();
    for (int fd : {out_file_, err_file_, out_pipe_})
        if (fd >= 0) ::close(fd);
}

int child_process::wait() {
    if (!reaped_ && pid_ > 0) {
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
        reaped_ = true;
        if (WIFSIGNALED(st)) signal_ = WTERMSIG(st);
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + signal_.value_or(0);
    }
    return status_;
}

bool child_process::exited() {
    if (reaped_ || pid_ <= 0) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return false;
    reaped_ = true;
    if (WIFSIGNALED(st)) signal_ = WTERMSIG(st);
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + signal_.value_or(0);
    return true;
}

void child_process::stop() {
    if (reaped_ || pid_ <= 0) return;
    ::kill(pid_, opts_.stop_signal);
    const auto until = clock_type::now() + opts_.grace;
    while (!exited() && clock_type::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!reaped_) {
        ::kill(pid_, SIGKILL);
        wait();
    }
}

std::optional<std::string> child_process::read_line(std::chrono::milliseconds timeout) {
    const auto until = clock_type::now() + timeout;
    while (true) {
        if (const auto nl = pending_.find('\n'); nl != std::string::npos) {
            std::string line = pending_.substr(0, nl);
            pending_.erase(0, nl + 1);
            return line;
        }
        if (out_pipe_ < 0) return std::nullopt;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now());
        if (left.count() <= 0) return std::nullopt;
        pollfd p{out_pipe_, POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno != EINTR) return std::nullopt;
        if (ready <= 0) continue;
        char buf[256];
        const auto n = ::read(out_pipe_, buf, sizeof buf);
        if (n <= 0) return std::nullopt;
        pending_.append(buf, static_cast<std::size_t>(n));
    }
}

std::string child_process::read_all() {
    std::string s = std::exchange(pending_, {});
    if (out_pipe_ < 0) return s;
    char buf[4096];
    for (;;) {
        const auto n = ::read(out_pipe_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        s.append(buf, static_cast<std::size_t>(n));
    }
    return s;
}

std::string child_process::stdout_text() const { return read_file(out_file_); }

std::string child_process::stderr_tail(std::size_t max) const {
    std::string s = read_file(err_file_);
    if (s.size() > max) s = "..." + s.substr(s.size() - max);
    for (auto& ch : s)
        if (ch == '\n' || ch == '\r') ch = ' ';
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

std::uint16_t free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    std::uint16_t port = 0;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) ::close(fd);
    return port;
}

bool accepts_connections(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

std::string wait_until_listening(child_process& child, std::uint16_t port, std::chrono::milliseconds timeout,
                                 const std::string& what) {
    const auto until = clock_type::now() + timeout;
    while (clock_type::now() < until) {
        if (accepts_connections(port)) return {};
        if (child.exited()) {
            const std::string err = child.stderr_tail();
            return what + " exited at once (status " + std::to_string(child.wait()) + ")" +
                   (err.empty() ? std::string() : ": " + err);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return what + " did not listen on 127.0.0.1:" + std::to_string(port) + " within " +
           std::to_string(timeout.count() / 1000) + " s";
}

password_file::password_file() {
    std::random_device rd;
    std::mt19937_64 rng(rd());
    static constexpr char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; ++i) password_ += hex[rng() % 16];
    char path[] = "/tmp/netpool-tools-pw-XXXXXX";
    const int fd = ::mkstemp(path);  // mode 0600
    if (fd < 0) throw failed("mkstemp");
    path_ = path;
    const std::string line = password_ + "\n";
    const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(fd);
    if (!written) {
        ::unlink(path_.c_str());
        throw std::runtime_error("password_file: could not write " + path_);
    }
}

password_file::~password_file() { ::unlink(path_.c_str()); }

std::string source_tree_file(const std::string& relative) {
    std::error_code ec;
    const auto exe = std::filesystem::canonical("/proc/self/exe", ec);
    if (ec) return relative;
    return (exe.parent_path().parent_path().parent_path() / relative).string();
}

}  // namespace netpool::tools
