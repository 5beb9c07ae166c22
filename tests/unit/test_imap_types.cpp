// IMAP's data types and pure code compile without Asio or OpenSSL: types.hpp, the
// response parser and the protocol helpers are usable (and testable, and fuzzable) without
// the I/O layer. A header that pulls in the adapter, connection, transport or Asio itself
// fails this file at compile time.
#include <netpool/imap/error.hpp>
#include <netpool/imap/protocol.hpp>
#include <netpool/imap/response.hpp>
#include <netpool/imap/types.hpp>

// ASIO_VERSION comes only with asio/version.hpp; every Asio header includes
// asio/detail/config.hpp, whose guard is the sure sign.
#if defined(ASIO_VERSION) || defined(ASIO_DETAIL_CONFIG_HPP) || defined(ASIO_HPP)
#error "an IMAP types/parser/protocol header includes Asio"
#endif
#if defined(OPENSSL_VERSION_NUMBER) || defined(OPENSSL_SSL_H) || defined(HEADER_SSL_H)
#error "an IMAP types/parser/protocol header includes OpenSSL"
#endif

#include <doctest/doctest.h>

#include <string>

using namespace netpool::imap;

TEST_CASE("imap types: a SELECT's responses folded into a mailbox, without the adapter") {
    std::error_code ec;
    const auto exists = parse_response("* 17 EXISTS\r\n", ec);
    const auto validity = parse_response("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n", ec);
    REQUIRE(exists);
    REQUIRE(validity);
    mailbox_info m;
    CHECK(apply_untagged(*exists, m));
    CHECK(apply_untagged(*validity, m));
    CHECK(m.exists == 17);
    CHECK(m.uidvalidity == 3857529045u);
    fetch_result r;
    r.mailbox = m;
    r.mailbox.name = "INBOX";
    CHECK(r.to_string() == "fetched 0 messages from INBOX (17 in the mailbox)");
    client_options o;
    CHECK_NOTHROW(o.validate());
    CHECK(limit_failure("UID SEARCH", limit_errc::too_many_search_results, o) ==
          "UID SEARCH: more than max_search_results = 1000000 UIDs");
}

TEST_CASE("fetch_parts: names round-trip, anything else is refused") {
    for (const auto p : {fetch_parts::summary, fetch_parts::header, fetch_parts::full})
        CHECK(parse_fetch_parts(to_string(p)) == p);
    CHECK(std::string(to_string(fetch_parts::header)) == "header");
    CHECK_FALSE(parse_fetch_parts("body").has_value());
    CHECK_FALSE(parse_fetch_parts("").has_value());
    CHECK_FALSE(parse_fetch_parts("Header").has_value());
}
