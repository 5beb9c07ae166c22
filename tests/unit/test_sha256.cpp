// netpool's own SHA-256 (core/src/sha256.cpp) against the FIPS 180-4 example vectors
// (NIST's "abc", the 448-bit two-block message, one million 'a'), the padding boundaries,
// and incremental updates split at every position; HMAC-SHA256 against RFC 4231.
#include <netpool/detail/sha256.hpp>
#include <netpool/endpoint.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

using netpool::detail::sha256;

namespace {

std::string hex(const sha256::digest_type& d) { return netpool::detail::to_hex(d.data(), d.size()); }

/// A message of `n` bytes that is not a repeated character.
std::string pattern(std::size_t n) {
    std::string m(n, '\0');
    for (std::size_t i = 0; i < n; ++i) m[i] = static_cast<char>((i * 7 + 3) & 0xff);
    return m;
}

}  // namespace

TEST_SUITE("sha256") {

TEST_CASE("FIPS 180-4 example: \"abc\" (one block)") {
    CHECK(hex(sha256::hash("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("FIPS 180-4 example: the 448-bit message (two blocks)") {
    CHECK(hex(sha256::hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("FIPS 180-4 example: one million 'a'") {
    const std::string million(1000000, 'a');
    CHECK(hex(sha256::hash(million)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

    // The same fed in uneven pieces, crossing block boundaries at different offsets.
    sha256 h;
    std::size_t fed = 0;
    for (std::size_t piece = 1; fed < million.size(); piece = piece % 997 + 13) {
        const std::size_t n = std::min(piece, million.size() - fed);
        h.update(million.data() + fed, n);
        fed += n;
    }
    CHECK(hex(h.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("the empty message") {
    CHECK(hex(sha256::hash("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256 h;
    h.update(nullptr, 0);
    CHECK(hex(h.finish()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256 partial;  // an empty update with bytes already buffered changes nothing
    partial.update("ab");
    partial.update(nullptr, 0);
    partial.update("c");
    CHECK(hex(partial.finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("padding boundaries: the length field fits in this block or needs the next") {
    // Expected values from an independent implementation (Python's hashlib).
    const struct {
        std::size_t size;
        const char* digest;
    } cases[] = {
        {55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"},
        {56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"},
        {63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"},
        {64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"},
        {65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e"},
        {119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e"},
        {120, "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5"},
        {128, "d2742f1f4ac6bb7ca2b239ee18402ba8b3f9f8e652d2a72973c2b9ba11c08cf6"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.size);
        CHECK(hex(sha256::hash(pattern(c.size))) == c.digest);
    }
}

TEST_CASE("incremental updates give the one-shot digest wherever the message is split") {
    const std::string m = pattern(200);
    const std::string whole = hex(sha256::hash(m));
    for (std::size_t i = 0; i <= m.size(); ++i) {
        for (std::size_t j = i; j <= m.size(); j += 17) {
            CAPTURE(i);
            CAPTURE(j);
            sha256 h;
            h.update(m.data(), i);
            h.update(m.data() + i, j - i);
            h.update(m.data() + j, m.size() - j);
            REQUIRE(hex(h.finish()) == whole);
        }
    }
}

namespace {
std::string hmac_hex(const std::string& key, const std::string& data) {
    const auto d = netpool::detail::hmac_sha256::mac(key, data);
    return netpool::detail::to_hex(d.data(), d.size());
}
}  // namespace

TEST_CASE("HMAC-SHA256: RFC 4231 test cases 1-7") {
    // 1: a 20-byte key
    CHECK(hmac_hex(std::string(20, '\x0b'), "Hi There") ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    // 2: a key shorter than the output
    CHECK(hmac_hex("Jefe", "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    // 3: combined length of key and data larger than 64 bytes
    CHECK(hmac_hex(std::string(20, '\xaa'), std::string(50, '\xdd')) ==
          "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    // 4: the key 0x01..0x19
    std::string key4;
    for (int i = 1; i <= 25; ++i) key4 += static_cast<char>(i);
    CHECK(hmac_hex(key4, std::string(50, '\xcd')) ==
          "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
    // 5: truncation to 128 bits (the RFC gives only the first 16 bytes)
    CHECK(hmac_hex(std::string(20, '\x0c'), "Test With Truncation").substr(0, 32) == "a3b6167473100ee06e0c796c2955552b");
    // 6: a key larger than the block size, hashed first
    CHECK(hmac_hex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First") ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    // 7: key and data both larger than the block size
    CHECK(hmac_hex(std::string(131, '\xaa'),
                   "This is a test using a larger than block-size key and a larger than block-size data. The key "
                   "needs to be hashed before being used by the HMAC algorithm.") ==
          "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

TEST_CASE("HMAC-SHA256: block-sized and empty keys, incremental updates") {
    // Values from Python's hmac module.
    CHECK(hmac_hex(std::string(64, 'k'), "") == "83026a325aaee70e36cfe607536aa1054104ad1077c36134810d4ccded1ccd3b");
    CHECK(hmac_hex("", "") == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    const std::string key(20, '\x0b');
    netpool::detail::hmac_sha256 h(key.data(), key.size());
    h.update("Hi ");
    h.update("There");
    const auto d = h.finish();
    CHECK(hex(d) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST_CASE("credential fingerprints are HMAC-SHA256 under the process key, not a bare SHA-256") {
    const std::string message("alice\0s3cret", 12);
    const auto& k = netpool::detail::process_key();
    const std::string key(reinterpret_cast<const char*>(k.data()), k.size());
    CHECK(netpool::credentials{"alice", "s3cret"}.fingerprint() == hmac_hex(key, message));
    // The old, unsalted form: neither it nor any prefix of it is the fingerprint.
    const std::string unsalted = hex(sha256::hash(message));
    CHECK(unsalted.substr(0, 16) == "13ab6889a5081cba");
    CHECK(netpool::credentials{"alice", "s3cret"}.fingerprint().find(unsalted.substr(0, 8)) == std::string::npos);
    // The key is random: not all zeros, and the same on every call in this process.
    CHECK(std::any_of(k.begin(), k.end(), [](std::uint8_t b) { return b != 0; }));
    CHECK(&netpool::detail::process_key() == &k);
}

}  // TEST_SUITE
