// libFuzzer target: the RESP parser (netpool::redis::resp_parser) and command encoding.
//
// The input is what a Redis server sends. It is parsed whole and cut into small pieces as
// reads from a socket would deliver it, with the default limits and with small ones drawn
// from the input; both runs must give the same replies and end the same way. Every reply
// must respect the limits it was parsed under. Then the input, cut into arguments, is
// encoded as a command and must parse back to exactly those arguments.
#include "fuzz_support.hpp"

#include <netpool/redis/types.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace netpool::redis;
using netpool_fuzz::check;

namespace {

struct outcome {
    std::vector<reply> replies;
    resp_parser::status last = resp_parser::status::need_more;
    std::error_code error;
};

bool same(const reply& a, const reply& b) {
    if (a.type != b.type || a.str != b.str || a.integer != b.integer || a.boolean != b.boolean ||
        a.elements.size() != b.elements.size())
        return false;
    // NaN is not equal to itself: compare the bits that matter.
    if (!(a.number == b.number) && !(a.number != a.number && b.number != b.number)) return false;
    for (std::size_t i = 0; i < a.elements.size(); ++i)
        if (!same(a.elements[i], b.elements[i])) return false;
    return true;
}

/// Elements of r and its aggregates (what max_elements bounds), and its depth.
void measure(const reply& r, std::size_t depth, std::size_t& elements, std::size_t& max_depth) {
    if (!r.elements.empty() || r.type == reply_type::array || r.type == reply_type::map || r.type == reply_type::set ||
        r.type == reply_type::push)
        max_depth = std::max(max_depth, depth + 1);
    for (const auto& e : r.elements) {
        ++elements;
        measure(e, depth + 1, elements, max_depth);
    }
}

void check_reply(const reply& r, const resp_limits& lim) {
    std::size_t elements = 0, depth = 0;
    measure(r, 0, elements, depth);
    check(elements <= lim.max_elements, "more elements than max_elements");
    check(depth <= lim.max_depth, "nested deeper than max_depth");
    if (r.type == reply_type::map) check(r.elements.size() % 2 == 0, "a map with an odd number of elements");
    check(r.str.size() <= std::max(lim.max_bulk, lim.max_line), "a string longer than the limits allow");
    (void)r.to_string();
}

outcome run(const std::vector<std::string_view>& pieces, const resp_limits& lim) {
    outcome o;
    resp_parser p(lim);
    std::string pending;  // bytes received and not yet consumed, as kit::session keeps them
    for (std::string_view piece : pieces) {
        pending.append(piece);
        while (!pending.empty()) {
            std::size_t used = 0;
            o.last = p.feed(pending, used);
            check(used <= pending.size(), "feed() consumed more than it was given");
            if (o.last == resp_parser::status::complete) {
                check(used > 0, "a reply completed without consuming a byte");
                pending.erase(0, used);
                o.replies.push_back(p.take());
                check_reply(o.replies.back(), lim);
                continue;
            }
            if (o.last == resp_parser::status::error) {
                o.error = p.error();
                check(static_cast<bool>(o.error), "status error without an error code");
                check(!p.error_detail().empty(), "an error without a detail");
                std::size_t again = 0;
                check(p.feed("+OK\r\n", again) == resp_parser::status::error, "an error is not final");
                p.reset();
                check(!p.error(), "reset() kept the error");
                // Reusable after reset(), with nothing of the old stream left: as a new one.
                resp_parser fresh(lim);
                std::size_t used_reset = 0, used_fresh = 0;
                check(p.feed("+OK\r\n", used_reset) == fresh.feed("+OK\r\n", used_fresh) &&
                          used_reset == used_fresh && p.error() == fresh.error(),
                      "a parser after reset() differs from a new one");
                return o;
            }
            check(used == pending.size(), "need_more with bytes left unconsumed");
            pending.clear();
        }
    }
    return o;
}

void compare(const outcome& a, const outcome& b) {
    check(a.replies.size() == b.replies.size(), "whole and pieced input gave different reply counts");
    for (std::size_t i = 0; i < a.replies.size(); ++i)
        check(same(a.replies[i], b.replies[i]), "whole and pieced input gave different replies");
    check(a.last == b.last && a.error == b.error, "whole and pieced input ended differently");
}

/// Any bytes as arguments (cut where the cutter says): encoded, then parsed back.
void check_command_round_trip(std::string_view in, netpool_fuzz::cutter& cut) {
    std::vector<std::string> args;
    for (std::string_view piece : cut.pieces(in)) args.emplace_back(piece);
    if (args.empty()) args.emplace_back();
    std::string wire;
    encode_command(std::span<const std::string>(args), wire);
    resp_parser p;
    std::size_t used = 0;
    check(p.feed(wire, used) == resp_parser::status::complete, "an encoded command does not parse");
    check(used == wire.size(), "an encoded command parses with bytes left over");
    const reply r = p.take();
    check(r.type == reply_type::array && r.elements.size() == args.size(), "an encoded command is not its array");
    for (std::size_t i = 0; i < args.size(); ++i)
        check(r.elements[i].type == reply_type::bulk_string && r.elements[i].str == args[i],
              "an encoded argument does not parse back to itself");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    netpool_fuzz::cutter cut(in);
    const std::uint64_t r = cut.next();
    resp_limits small;
    small.max_line = 1 + r % 64;
    small.max_bulk = 1 + (r >> 8) % 128;
    small.max_elements = 1 + (r >> 16) % 16;
    small.max_depth = 1 + (r >> 24) % 4;
    small.max_reply = 1 + (r >> 32) % 512;
    for (const auto& lim : {resp_limits{}, small}) {
        const outcome whole = run({in}, lim);
        compare(whole, run(cut.pieces(in), lim));
    }
    check_command_round_trip(in, cut);
    return 0;
}
