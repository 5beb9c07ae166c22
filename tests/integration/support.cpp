#include "support.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

namespace netpool::test {

namespace fs = std::filesystem;

namespace {

/// Owns the per-process directory and removes it when the process exits.
struct temp_dir_holder {
    std::string path;
    temp_dir_holder() {
        fs::path base = "/tmp";
        if (const char* env = std::getenv("NETPOOL_TEST_TMP"); env != nullptr && *env != '\0') {
            base = env;
            fs::create_directories(base);
        }
        std::string pattern = (base / "netpool-test-XXXXXX").string();
        if (mkdtemp(pattern.data()) == nullptr)
            throw std::runtime_error("cannot create a temporary directory under " + base.string());
        path = pattern;
    }
    ~temp_dir_holder() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};

std::string quoted(const fs::path& p) {
    // Single quotes for the shell; a quote inside the path is closed, escaped and reopened.
    std::string out = "'";
    for (char ch : p.string()) {
        if (ch == '\'') out += "'\\''";
        else out += ch;
    }
    return out + "'";
}

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream out(p);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + p.string());
}

/// Runs one openssl command line in `dir`; throws with its output if it fails.
void openssl(const fs::path& dir, const std::string& args) {
    const fs::path log = dir / "openssl.log";
    const std::string cmd = "cd " + quoted(dir) + " && openssl " + args + " > " + quoted(log) + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
        std::ifstream in(log);
        std::stringstream text;
        text << in.rdbuf();
        throw std::runtime_error("openssl " + args + " failed:\n" + text.str());
    }
}

// Our own configuration, so the certificates do not depend on the system's openssl.cnf.
constexpr const char* openssl_config = R"([req]
distinguished_name = dn
prompt = no

[dn]
CN = netpool test

[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost,IP:127.0.0.1

[v3_wrong_name]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:wrong.example
)";

constexpr const char* new_ec_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

test_certs make_certs() {
    const fs::path dir = fs::path(temp_dir()) / "certs";
    fs::create_directories(dir);
    write_file(dir / "openssl.cnf", openssl_config);

    const auto make_ca = [&](const std::string& name, const std::string& cn) {
        openssl(dir, "req -x509 -config openssl.cnf -extensions v3_ca " + std::string(new_ec_key) + " -keyout " +
                         name + ".key -out " + name + ".pem -days 2 -subj '/CN=" + cn + "'");
    };
    const auto make_leaf = [&](const std::string& name, const std::string& cn, const std::string& extensions,
                               int serial) {
        openssl(dir, "req -new -config openssl.cnf " + std::string(new_ec_key) + " -keyout " + name +
                         ".key -out " + name + ".csr -subj '/CN=" + cn + "'");
        openssl(dir, "x509 -req -in " + name + ".csr -CA ca.pem -CAkey ca.key -set_serial " +
                         std::to_string(serial) + " -days 2 -extfile openssl.cnf -extensions " + extensions +
                         " -out " + name + ".pem");
    };
    make_ca("ca", "netpool test CA");
    make_ca("other_ca", "netpool other test CA");
    make_leaf("server", "localhost", "v3_server", 2);
    make_leaf("wrong_name", "wrong.example", "v3_wrong_name", 3);

    test_certs c;
    c.ca_cert = (dir / "ca.pem").string();
    c.server_cert = (dir / "server.pem").string();
    c.server_key = (dir / "server.key").string();
    c.wrong_name_cert = (dir / "wrong_name.pem").string();
    c.wrong_name_key = (dir / "wrong_name.key").string();
    c.other_ca_cert = (dir / "other_ca.pem").string();
    return c;
}

}  // namespace

const std::string& temp_dir() {
    static const temp_dir_holder holder;
    return holder.path;
}

const test_certs& certs() {
    static const test_certs made = make_certs();
    return made;
}

server_thread::server_thread(echo::server_options opts) : work_(asio::make_work_guard(ioc_)) {
    server_.emplace(ioc_.get_executor(), std::move(opts));
    server_->start();
    thread_ = std::thread([this] { ioc_.run(); });
}

server_thread::~server_thread() {
    try {
        stop();
    } catch (...) {
        // Already failing; stopping the context below ends whatever is left.
    }
    server_.reset();
    work_.reset();
    ioc_.stop();
    thread_.join();
}

void server_thread::start() { server_->start(); }

void server_thread::stop() {
    auto stopped = std::make_shared<std::promise<void>>();
    auto done = stopped->get_future();
    server_->stop([stopped] { stopped->set_value(); });
    if (done.wait_for(default_guard) != std::future_status::ready)
        throw std::runtime_error("echo server did not stop within the guard time");
}

io_threads::io_threads(unsigned n) : ioc_(static_cast<int>(n)), work_(asio::make_work_guard(ioc_)) {
    for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { ioc_.run(); });
}

io_threads::~io_threads() { stop(); }

void io_threads::stop() {
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
}

endpoint loopback(std::uint16_t port) {
    endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = port;
    return ep;
}

pool_options quick_pool(std::size_t size, std::size_t overflow) {
    pool_options o;
    o.size = size;
    o.max_overflow = overflow;
    o.connect_timeout = std::chrono::milliseconds(2000);
    o.handshake_timeout = std::chrono::milliseconds(2000);
    o.backoff_initial = std::chrono::milliseconds(10);
    o.backoff_max = std::chrono::milliseconds(50);
    o.max_restarts = 5;
    o.restart_period = std::chrono::seconds(10);
    o.down_cooldown = std::chrono::milliseconds(200);
    return o;
}

std::size_t open_fd_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
    return n - 1;  // the iterator's own descriptor
}

namespace detail {
void fail_guard_elapsed(std::chrono::milliseconds guard) {
    FAIL("coroutine did not complete within " << guard.count() << " ms (cancelled)");
    std::abort();  // FAIL throws; this only tells the compiler
}
}  // namespace detail

}  // namespace netpool::test
