#include "common.hpp"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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

namespace {
struct pki_dir {
    std::filesystem::path dir;
    pki files;
    pki_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "netpool-bench-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary directory");
        dir = tmpl;
        const std::string d = dir.string();
        const std::string script =
            "set -e; cd '" + d + "'; "
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
            "-subj '/CN=netpool bench CA' -keyout ca.key -out ca.pem; "
            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=localhost' "
            "-keyout server.key -out server.csr; "
            "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext; "
            "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 "
            "-extfile san.ext -out server.pem";
        const std::string cmd = "sh -c \"" + script + "\" > '" + d + "/openssl.log' 2>&1";
        if (std::system(cmd.c_str()) != 0)
            throw std::runtime_error("openssl could not make a test certificate (see " + d + "/openssl.log)");
        files = {(dir / "ca.pem").string(), (dir / "server.pem").string(), (dir / "server.key").string()};
    }
    ~pki_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }
};
}  // namespace

const pki& test_pki() {
    static pki_dir d;
    return d.files;
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

namespace {

void write_all(int fd, const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
        const auto n = ::write(fd, s.data() + done, s.size() - done);
        if (n <= 0) return;  // the parent is gone; the child dies with it
        done += static_cast<std::size_t>(n);
    }
}

/// The child's whole life: start the listeners, report "ok PORT..." (or "error WHY") on `fd`,
/// then serve until killed. Never returns into the parent's main().
[[noreturn]] void run_server_child(int fd, const std::vector<server_process::listener>& listeners, unsigned threads,
                                   pid_t parent) {
    try {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(0);  // the parent died before prctl took effect
        asio::io_context ioc(static_cast<int>(threads));
        auto work = asio::make_work_guard(ioc);
        std::vector<std::unique_ptr<echo::server>> servers;
        std::string reply = "ok";
        for (const auto& l : listeners) {
            echo::server_options o;
            o.address = "127.0.0.1";
            o.mode = l.mode;
            o.reset_after = l.reset_after;
            if (l.tls) {
                o.cert_file = test_pki().cert;
                o.key_file = test_pki().key;
            }
            servers.push_back(std::make_unique<echo::server>(ioc.get_executor(), o));
            servers.back()->start();
            reply += ' ' + std::to_string(servers.back()->port());
        }
        write_all(fd, reply + '\n');
        ::close(fd);
        std::vector<std::thread> more;
        for (unsigned i = 1; i < threads; ++i) more.emplace_back([&ioc] { ioc.run(); });
        ioc.run();
    } catch (const std::exception& e) {
        write_all(fd, std::string("error ") + e.what() + '\n');
    }
    // _exit, not exit: the parent's static destructors (the PKI directory) are not ours to run.
    ::_exit(1);
}

}  // namespace

server_process::server_process(const std::vector<listener>& listeners, unsigned threads) {
    // Made here, before the fork, so the child reuses the parent's files instead of making
    // (and never removing) its own.
    if (std::any_of(listeners.begin(), listeners.end(), [](const listener& l) { return l.tls; })) test_pki();
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("server_process: pipe2 failed");
    const pid_t parent = ::getpid();
    std::fflush(nullptr);  // or the child would inherit, and could repeat, unflushed output
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::runtime_error("server_process: fork failed");
    }
    if (pid == 0) {
        ::close(fds[0]);
        run_server_child(fds[1], listeners, std::max(1u, threads), parent);
    }
    pid_ = pid;
    ::close(fds[1]);
    std::string line;
    char c = 0;
    while (::read(fds[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(fds[0]);
    if (line.rfind("ok", 0) != 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        throw std::runtime_error("echo server process: " + (line.empty() ? std::string("exited early") : line));
    }
    std::istringstream in(line.substr(2));
    unsigned port = 0;
    while (in >> port) ports_.push_back(static_cast<std::uint16_t>(port));
}

server_process::~server_process() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
}

double latencies::percentile(double q) {
    if (us.empty()) return 0;
    if (!sorted_) {
        std::sort(us.begin(), us.end());
        sorted_ = true;
    }
    const auto i = static_cast<std::size_t>(q * static_cast<double>(us.size() - 1) + 0.5);
    return us[std::min(i, us.size() - 1)];
}

}  // namespace netpool::bench
