// SMTP's data types and pure code compile without Asio or OpenSSL: types.hpp, the reply
// parser, the protocol helpers and the message builder are usable (and testable, and
// fuzzable) without the I/O layer. A header that pulls in the adapter, connection,
// transport or Asio itself fails this file at compile time.
#include <netpool/smtp/error.hpp>
#include <netpool/smtp/message.hpp>
#include <netpool/smtp/protocol.hpp>
#include <netpool/smtp/reply.hpp>
#include <netpool/smtp/types.hpp>

// ASIO_VERSION comes only with asio/version.hpp; every Asio header includes
// asio/detail/config.hpp, whose guard is the sure sign.
#if defined(ASIO_VERSION) || defined(ASIO_DETAIL_CONFIG_HPP) || defined(ASIO_HPP)
#error "an SMTP types/parser/protocol/message header includes Asio"
#endif
#if defined(OPENSSL_VERSION_NUMBER) || defined(OPENSSL_SSL_H) || defined(HEADER_SSL_H)
#error "an SMTP types/parser/protocol/message header includes OpenSSL"
#endif

#include <doctest/doctest.h>

#include <string>

using namespace netpool::smtp;

TEST_CASE("smtp types: a transaction judged from replies alone, without the adapter") {
    std::error_code ec;
    const auto mail = parse_reply("250 2.1.0 Ok\r\n", ec);
    const auto rcpt = parse_reply("550 5.1.1 No such user\r\n", ec);
    REQUIRE(mail);
    REQUIRE(rcpt);
    message m;
    m.from = "Ann <ann@example.org>";
    m.to = {"bob@example.org"};
    const envelope env = m.make_envelope();
    send_result r;
    CHECK(judge_envelope(env, *mail, {*rcpt}, nullptr, r) == envelope_next::done);
    CHECK(r.ec == errc::permanent_failure);
    CHECK(r.to_string() == "failed at RCPT TO: " + r.ec.message() +
                               " (550 5.1.1 No such user); 0/1 recipients accepted");
    client_options o;
    CHECK_NOTHROW(o.validate());
}
