// smtp_send: send one message through a pooled SMTP session.
//
//   smtp_send HOST PORT FROM TO [starttls|implicit|none]
//
// With SMTP_USER and SMTP_PASSWORD in the environment it authenticates (over TLS only; set
// SMTP_ALLOW_PLAINTEXT=1 to allow AUTH without TLS, e.g. against a local test server).
// SMTP_CA_FILE names a PEM file of trusted CAs (default: the system's). The program runs the
// pools on one background thread and uses the blocking send; inside an Asio program, use
// `co_await mailer.send(account, message)` instead. Exit status 0 when the message was sent.
#include <netpool/registry.hpp>
#include <netpool/smtp/mailer.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    if (argc < 5) {
        std::cerr << "usage: smtp_send HOST PORT FROM TO [none|starttls|implicit]\n";
        return 2;
    }
    netpool::smtp::account account;
    account.server.host = argv[1];
    account.server.port = static_cast<std::uint16_t>(std::stoi(argv[2]));
    const std::string mode = argc > 5 ? argv[5] : "none";
    account.server.tls = mode == "starttls"   ? netpool::tls_mode::starttls
                         : mode == "implicit" ? netpool::tls_mode::implicit
                                              : netpool::tls_mode::none;
    if (const char* ca = std::getenv("SMTP_CA_FILE")) account.server.tls_opts.ca_file = ca;
    if (const char* user = std::getenv("SMTP_USER")) account.client.cred.user = user;
    if (const char* secret = std::getenv("SMTP_PASSWORD")) account.client.cred.secret = secret;
    account.client.allow_plaintext_auth = std::getenv("SMTP_ALLOW_PLAINTEXT") != nullptr;
    account.pool.size = 1;  // one message: one connection is plenty
    account.pool.max_overflow = 0;
    account.pool.max_restarts = 2;  // fail fast with the real cause when the server refuses us

    netpool::smtp::message msg;
    msg.from = argv[3];
    msg.to = {argv[4]};
    msg.subject = "Hello from netpool";
    msg.text = "This message went through a pooled SMTP connection.\n";

    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::thread runner([&io] { io.run(); });

    int status = 1;
    {
        netpool::registry registry(io.get_executor());
        netpool::smtp::mailer mailer(registry);
        try {
            const auto result = mailer.send_blocking(account, msg);
            std::cout << result.to_string() << "\n";  // never contains credentials
            status = result.sent ? 0 : 1;
        } catch (const std::exception& e) {  // configuration mistakes (a field is named)
            std::cerr << "smtp_send: " << e.what() << "\n";
            status = 2;
        }
    }  // the registry closes its pools (QUIT) here
    work.reset();
    runner.join();
    return status;
}
