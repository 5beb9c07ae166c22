// Echo framing: encoding, decoding in pieces, the size limit, and random input.
#include <netpool/echo/frame.hpp>
#include <netpool/error.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <ostream>  // doctest prints std::error_code through it
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace netpool::echo;
using netpool::errc;

TEST_SUITE("echo_frame") {

TEST_CASE("header is four big-endian bytes") {
    const auto h = encode_header(0x01020304);
    CHECK(std::string(h.data(), h.size()) == std::string("\x01\x02\x03\x04", 4));
    CHECK(decode_header(h) == 0x01020304u);
    // Bytes above 0x7f must not sign-extend through a signed char.
    const auto big = encode_header(0xFFFFFFFEu);
    CHECK(decode_header(big) == 0xFFFFFFFEu);
    CHECK(decode_header(encode_header(0)) == 0u);
}

TEST_CASE("encode_frame appends header then payload") {
    CHECK(encode_frame("abc") == std::string("\0\0\0\x03" "abc", 7));
    CHECK(encode_frame("") == std::string(4, '\0'));
    std::string out = "x";
    encode_frame("yz", out);
    CHECK(out == std::string("x\0\0\0\x02yz", 7));
}

TEST_CASE("decode_frame: need_more, frame, trailing bytes") {
    const std::string wire = encode_frame("hello") + "rest";

    auto r = decode_frame(std::string_view(wire).substr(0, 2), 100);
    CHECK(r.status == decode_status::need_more);
    CHECK(r.needed == frame_header_size);

    r = decode_frame(std::string_view(wire).substr(0, 6), 100);
    CHECK(r.status == decode_status::need_more);
    CHECK(r.needed == 9);

    r = decode_frame(wire, 100);
    REQUIRE(r.status == decode_status::frame);
    CHECK(r.payload == "hello");
    CHECK(r.consumed == 9);

    r = decode_frame({}, 100);
    CHECK(r.status == decode_status::need_more);
}

TEST_CASE("decode_frame: an empty frame is a ping") {
    const std::string wire = encode_frame("");
    const auto r = decode_frame(wire, 0);
    REQUIRE(r.status == decode_status::frame);
    CHECK(r.payload.empty());
    CHECK(r.consumed == 4);
}

TEST_CASE("decode_frame: the size limit applies as soon as the header is there") {
    const std::string at_limit = encode_frame(std::string(10, 'a'));
    CHECK(decode_frame(at_limit, 10).status == decode_status::frame);

    const std::string header_only = std::string(encode_frame(std::string(11, 'a'))).substr(0, 4);
    const auto r = decode_frame(header_only, 10);
    CHECK(r.status == decode_status::error);
    CHECK(r.error == errc::frame_too_large);

    const auto huge = encode_header(max_declarable_frame);
    const auto h = decode_frame(std::string_view(huge.data(), huge.size()), default_max_frame);
    CHECK(h.status == decode_status::error);
    CHECK(h.error == errc::frame_too_large);
}

TEST_CASE("frame_decoder: one byte at a time") {
    frame_decoder d(100);
    const std::string wire = encode_frame("one") + encode_frame("") + encode_frame("three");
    std::vector<std::string> got;
    for (char ch : wire) {
        d.feed(std::string_view(&ch, 1));
        for (auto r = d.next(); r.status == decode_status::frame; r = d.next()) got.emplace_back(r.payload);
    }
    CHECK(got == std::vector<std::string>{"one", "", "three"});
    CHECK(d.buffered() == 0);
}

TEST_CASE("frame_decoder: many frames from one feed, then a partial one") {
    frame_decoder d(100);
    const std::string wire = encode_frame("a") + encode_frame("bb") + encode_frame("ccc");
    const std::string last = encode_frame("dddd");
    d.feed(wire + last.substr(0, 6));
    CHECK(d.next().payload == "a");
    CHECK(d.next().payload == "bb");
    CHECK(d.next().payload == "ccc");
    auto r = d.next();
    CHECK(r.status == decode_status::need_more);
    CHECK(r.needed == 8);
    CHECK(d.buffered() == 6);
    d.feed(last.substr(6));
    CHECK(d.next().payload == "dddd");
    CHECK(d.next().status == decode_status::need_more);
}

TEST_CASE("frame_decoder: an oversized header fails at once and stays failed") {
    frame_decoder d(16);
    const auto h = encode_header(1u << 30);
    d.feed(std::string_view(h.data(), h.size()));
    auto r = d.next();
    CHECK(r.status == decode_status::error);
    CHECK(r.error == errc::frame_too_large);
    CHECK(d.failed());
    // The declared gigabyte was never reserved.
    CHECK(d.capacity() < 1024);
    d.feed(encode_frame("ok"));
    CHECK(d.next().status == decode_status::error);
    CHECK(d.buffered() <= 4);

    d.reset();
    CHECK_FALSE(d.failed());
    d.feed(encode_frame("ok"));
    CHECK(d.next().payload == "ok");
}

TEST_CASE("random round trip in random pieces") {
    std::mt19937 rng(20241124);
    for (int round = 0; round < 200; ++round) {
        std::vector<std::string> sent;
        std::string wire;
        const int frames = std::uniform_int_distribution<int>(0, 20)(rng);
        for (int i = 0; i < frames; ++i) {
            std::string p(std::uniform_int_distribution<std::size_t>(0, 300)(rng), '\0');
            for (auto& ch : p) ch = static_cast<char>(rng());
            encode_frame(p, wire);
            sent.push_back(std::move(p));
        }
        frame_decoder d(300);
        std::vector<std::string> got;
        std::size_t fed = 0;
        while (fed < wire.size()) {
            const auto n = std::min(wire.size() - fed, std::uniform_int_distribution<std::size_t>(1, 700)(rng));
            d.feed(std::string_view(wire).substr(fed, n));
            fed += n;
            for (auto r = d.next(); r.status == decode_status::frame; r = d.next()) got.emplace_back(r.payload);
            REQUIRE_FALSE(d.failed());
        }
        CHECK(got == sent);
        CHECK(d.buffered() == 0);
    }
}

TEST_CASE("random bytes never crash and never over-allocate") {
    std::mt19937 rng(7);
    for (int round = 0; round < 2000; ++round) {
        const std::size_t max = std::uniform_int_distribution<std::size_t>(0, 64)(rng);
        frame_decoder d(max);
        std::size_t fed = 0;
        const int pieces = std::uniform_int_distribution<int>(1, 8)(rng);
        for (int p = 0; p < pieces; ++p) {
            std::string bytes(std::uniform_int_distribution<std::size_t>(0, 40)(rng), '\0');
            // Small leading bytes make plausible lengths, so frames appear as well as errors.
            for (auto& ch : bytes) ch = static_cast<char>(rng() % 4 == 0 ? rng() : rng() % 3);
            d.feed(bytes);
            fed += bytes.size();
            for (;;) {
                const auto r = d.next();
                if (r.status == decode_status::frame) {
                    CHECK(r.payload.size() <= max);
                    continue;
                }
                if (r.status == decode_status::error) CHECK(r.error == errc::frame_too_large);
                break;
            }
            // Only bytes actually fed are ever held, whatever lengths they declare.
            CHECK(d.buffered() <= fed);
        }
        // At most one partial frame plus one piece is held; std::string may double that,
        // but nothing grows towards a declared length.
        CHECK(d.capacity() <= std::max<std::size_t>(64, 2 * (max + frame_header_size + 40)));

        // The stateless decoder agrees: it only ever looks inside the input it is given.
        std::string raw(std::uniform_int_distribution<std::size_t>(0, 12)(rng), '\0');
        for (auto& ch : raw) ch = static_cast<char>(rng());
        const auto r = decode_frame(raw, max);
        if (r.status == decode_status::frame) {
            CHECK(r.consumed <= raw.size());
            CHECK(r.payload.data() >= raw.data());
            CHECK(r.payload.data() + r.payload.size() <= raw.data() + raw.size());
        }
    }
}

}  // TEST_SUITE
