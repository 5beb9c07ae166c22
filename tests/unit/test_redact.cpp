// netpool::redactor: every encoding of a credential that netpool sends is replaced, and the
// raw secret survives no form (issue 13, item 3).
#include <netpool/redact.hpp>

#include <doctest/doctest.h>

#include <string>

using netpool::base64_encode;
using netpool::redactor;

namespace {

/// The IMAP quoted-string body LOGIN sends (RFC 9051 4.3).
std::string quoted(const std::string& s) {
    std::string out;
    for (char ch : s) {
        if (ch == '"' || ch == '\\') out += '\\';
        out += ch;
    }
    return out;
}

std::string plain_message(const std::string& authzid, const std::string& user, const std::string& secret) {
    return authzid + std::string(1, '\0') + user + std::string(1, '\0') + secret;
}

}  // namespace

TEST_CASE("base64_encode: RFC 4648 test vectors") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foo") == "Zm9v");
    CHECK(base64_encode("foob") == "Zm9vYg==");
    CHECK(base64_encode("fooba") == "Zm9vYmE=");
    CHECK(base64_encode("foobar") == "Zm9vYmFy");
    CHECK(base64_encode(std::string("\0\xff\xfe", 3)) == "AP/+");
}

TEST_CASE("redactor: every form sent is replaced, for passwords with quotes, backslashes and non-ASCII") {
    const std::string user = "alice@example.org";
    for (const std::string& secret : {std::string("plain-password"), std::string("a \"quoted\" pass"),
                                     std::string("back\\slash\\\\x"), std::string("mix \\\"both\\\" (x) {3}"),
                                     std::string("caf\xc3\xa9 \xe2\x82\xac \"x\""), std::string("\"")}) {
        CAPTURE(secret);
        redactor r;
        r.add_credential(user, secret);
        const std::string forms[] = {
            secret,                                                       // raw, and an IMAP literal
            quoted(secret),                                               // IMAP LOGIN quoted string
            base64_encode(secret),                                        // SMTP AUTH LOGIN
            base64_encode(plain_message("", user, secret)),               // AUTH PLAIN, no authzid
            base64_encode(plain_message(user, user, secret)),             // AUTH PLAIN, authzid = user
            base64_encode("user=" + user + "\x01" "auth=Bearer " + secret + "\x01\x01"),  // XOAUTH2
        };
        for (const auto& form : forms) {
            CAPTURE(form);
            const std::string out = r("A2 NO [AUTHENTICATIONFAILED] echo: " + form + " :end");
            CHECK(out.find(form) == std::string::npos);
            CHECK(out.find("[redacted]") != std::string::npos);
            if (secret.size() > 1) CHECK(out.find(secret) == std::string::npos);
            CHECK(out.rfind("A2 NO [AUTHENTICATIONFAILED] echo: ", 0) == 0);
            CHECK(out.ends_with(" :end"));
        }
        // The echoed LOGIN line as a server would send it back (a one-byte password such as
        // `"` replaces every such byte: skipped here).
        if (secret.size() == 1) continue;
        const std::string echoed = "a1 NO LOGIN \"" + user + "\" \"" + quoted(secret) + "\" rejected";
        const std::string out = r(echoed);
        CHECK(out == "a1 NO LOGIN \"" + user + "\" \"[redacted]\" rejected");
    }
}

TEST_CASE("redactor: several occurrences, the longest form first, and nothing else touched") {
    redactor r;
    r.add_credential("bob", "s3cret-pw");
    CHECK(r("s3cret-pw and s3cret-pw") == "[redacted] and [redacted]");
    CHECK(r("nothing here") == "nothing here");
    // A user name alone is no secret.
    CHECK(r("user bob") == "user bob");
    // The base64 of PLAIN contains no raw secret, but is replaced whole, not in part.
    const std::string b64 = base64_encode(std::string("\0bob\0s3cret-pw", 14));
    CHECK(r("AUTH PLAIN " + b64) == "AUTH PLAIN [redacted]");
}

TEST_CASE("redactor: short raw forms are skipped below min_plain, base64 forms never") {
    redactor r;
    r.add_credential("u", "pw", 4);
    CHECK(r("pw in a word: pwned") == "pw in a word: pwned");
    CHECK(r(base64_encode("pw")) == "[redacted]");
    CHECK(r(base64_encode(std::string("\0u\0pw", 5))) == "[redacted]");
    redactor all;
    all.add_credential("u", "pw");
    CHECK(all("x pw y") == "x [redacted] y");
}

TEST_CASE("redactor: an empty secret adds nothing; add() with its own replacement") {
    redactor r;
    r.add_credential("alice", "");
    CHECK(r.empty());
    CHECK(r("alice") == "alice");
    r.add("alice", "[user]");
    r.add("imap.example.org", "[host]");
    CHECK(r("alice@imap.example.org") == "[user]@[host]");
    // A replacement that contains the form does not loop.
    redactor loop;
    loop.add("ab", "abab");
    CHECK(loop("ab ab") == "abab abab");
}
