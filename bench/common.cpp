#include "common.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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
