// imap_fetch: print the newest messages of a mailbox through a pooled IMAP session.
//
//   imap_fetch HOST PORT [MAILBOX [TOP [implicit|starttls|none]]]
//
// IMAP_USER and IMAP_PASSWORD in the environment are the credentials (they travel over TLS
// only; set IMAP_ALLOW_PLAINTEXT=1 to allow them without TLS, e.g. against a local test
// server). IMAP_CA_FILE names a PEM file of trusted CAs (default: the system's). The program
// runs the pools on one background thread and uses the blocking call; inside an Asio
// program, use `co_await client.fetch_latest(account, mailbox, top)` instead. Exit status 0
// when the fetch succeeded.
#include <netpool/imap/client.hpp>
#include <netpool/registry.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: imap_fetch HOST PORT [MAILBOX [TOP [implicit|starttls|none]]]\n";
        return 2;
    }
    netpool::imap::account account;
    account.server.host = argv[1];
    account.server.port = static_cast<std::uint16_t>(std::stoi(argv[2]));
    const std::string mailbox = argc > 3 ? argv[3] : "INBOX";
    const std::size_t top = argc > 4 ? static_cast<std::size_t>(std::stoul(argv[4])) : 5;
    const std::string mode = argc > 5 ? argv[5] : "implicit";
    account.server.tls = mode == "starttls" ? netpool::tls_mode::starttls
                         : mode == "none"   ? netpool::tls_mode::none
                                            : netpool::tls_mode::implicit;  // IMAPS, port 993
    if (const char* ca = std::getenv("IMAP_CA_FILE")) account.server.tls_opts.ca_file = ca;
    if (const char* user = std::getenv("IMAP_USER")) account.client.cred.user = user;
    if (const char* secret = std::getenv("IMAP_PASSWORD")) account.client.cred.secret = secret;
    account.client.allow_plaintext_login = std::getenv("IMAP_ALLOW_PLAINTEXT") != nullptr;
    account.pool.size = 1;  // one fetch: one session is plenty
    account.pool.max_overflow = 0;
    account.pool.max_restarts = 2;  // fail fast with the real cause when the server refuses us

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread runner([&io] { io.run(); });

    int status = 1;
    {
        netpool::registry registry(io.get_executor());
        netpool::imap::client client(registry);
        try {
            const auto result = client.fetch_latest_blocking(account, mailbox, top);
            std::cout << result.to_string() << "\n";  // never contains credentials
            for (const auto& m : result.messages) {
                std::cout << "UID " << m.uid << "  " << m.envelope_date << "  " << m.envelope_from << "\n    "
                          << m.envelope_subject << "  (" << m.size << " bytes";
                for (const auto& f : m.flags) std::cout << " " << f;
                std::cout << ")\n";
            }
            status = result.ok() ? 0 : 1;
        } catch (const std::exception& e) {  // configuration mistakes (a field is named)
            std::cerr << "imap_fetch: " << e.what() << "\n";
            status = 2;
        }
    }  // the registry closes its pools (LOGOUT) here
    work.reset();
    runner.join();
    return status;
}
