// libFuzzer target: the IMAP response parser (netpool::imap::response_parser) and astring
// quoting (quote_astring).
//
// The input is what a server sends. It is parsed twice per limits: all in one feed(), and
// cut into small pieces as the incremental parser receives them from a socket; both runs
// must yield the same responses and the same final state. Responses must respect the
// limits, the buffer must never grow towards an announced literal size, and whatever
// quote_astring() makes of the input must parse back to the input.
#include "fuzz_support.hpp"

#include <netpool/imap/response.hpp>

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace netpool::imap;
using netpool_fuzz::check;

namespace {

struct outcome {
    std::vector<response> responses;
    response_parser::status last = response_parser::status::need_more;
    std::error_code error;
    std::size_t buffered = 0;
};

bool same(const value& a, const value& b) {
    if (a.kind != b.kind || a.text != b.text || a.number != b.number || a.items.size() != b.items.size()) return false;
    for (std::size_t i = 0; i < a.items.size(); ++i)
        if (!same(a.items[i], b.items[i])) return false;
    return true;
}

bool same(const response& a, const response& b) {
    if (a.k != b.k || a.tag != b.tag || a.status != b.status || a.number != b.number || a.name != b.name ||
        a.code != b.code || a.text != b.text || a.data.size() != b.data.size())
        return false;
    for (std::size_t i = 0; i < a.data.size(); ++i)
        if (!same(a.data[i], b.data[i])) return false;
    return true;
}

void check_value(const value& v, std::size_t depth, const response_limits& lim) {
    switch (v.kind) {
    case value::type::list:
        check(depth + 1 <= lim.max_depth, "a list nested deeper than max_depth");
        check(v.text.empty() && v.str().empty(), "a list with text");
        for (const auto& item : v.items) check_value(item, depth + 1, lim);
        return;
    case value::type::nil: check(v.text.empty() && v.items.empty(), "NIL with contents"); return;
    case value::type::number:
        check(!v.text.empty() && v.text.find_first_not_of("0123456789") == std::string::npos, "a number that is not digits");
        {
            const std::size_t nz = v.text.find_first_not_of('0');
            const std::string digits = nz == std::string::npos ? "0" : v.text.substr(nz);
            check(std::to_string(v.number) == digits, "a number's value does not match its digits");
        }
        return;
    case value::type::atom: check(!v.text.empty(), "an empty atom"); return;
    case value::type::string: check(v.text.size() <= lim.max_response, "a string larger than max_response"); return;
    }
    check(false, "a value of no known type");
}

void check_response(const response& r, const response_limits& lim) {
    for (const auto& v : r.data) check_value(v, 0, lim);
    if (r.is_tagged()) {
        check(!r.tag.empty(), "a tagged response without a tag");
        check(r.status == "OK" || r.status == "NO" || r.status == "BAD", "a tagged response with a bad status");
    }
    if (r.is_continuation()) check(r.tag.empty() && r.status.empty() && r.name.empty(), "a continuation with fields");
    (void)r.to_string();
    (void)r.code_name();
    (void)r.code_argument();
}

// fresh: a new parser for every response, fed what was left over, as the adapter reads;
// otherwise one parser for the whole stream.
outcome run(const std::vector<std::string_view>& pieces, const response_limits& lim, bool fresh) {
    outcome o;
    response_parser p(lim);
    std::string pending;  // bytes received and not yet consumed, as the adapter keeps them
    std::size_t received = 0;
    for (std::string_view piece : pieces) {
        pending.append(piece);
        received += piece.size();
        while (!pending.empty()) {
            std::size_t used = 0;
            o.last = p.feed(pending, used);
            check(used <= pending.size(), "feed() consumed more than it was given");
            pending.erase(0, used);
            check(p.buffered() <= lim.max_response, "more buffered than max_response");
            // A literal's announced size is never allocated up front: memory follows the bytes.
            check(p.capacity() <= 2 * received + 64, "the buffer grew beyond the bytes received");
            if (o.last == response_parser::status::complete) {
                check(used > 0, "a response completed without consuming a byte");
                o.responses.push_back(p.take());
                check_response(o.responses.back(), lim);
                if (fresh) p = response_parser(lim);
                continue;
            }
            if (o.last == response_parser::status::error) {
                o.error = p.error();
                check(static_cast<bool>(o.error), "status error without an error code");
                std::size_t again = 0;
                check(p.feed("* OK\r\n", again) == response_parser::status::error, "an error is not final");
                o.buffered = p.buffered();
                p.reset();  // reusable after reset(), with nothing of the old stream left
                check(!p.error() && !p.mid_response(), "reset() left state behind");
                response_parser fresh_parser(lim);
                std::size_t used_fresh = 0;
                check(p.feed("* OK\r\n", again) == fresh_parser.feed("* OK\r\n", used_fresh) &&
                          again == used_fresh && p.error() == fresh_parser.error(),
                      "a parser after reset() differs from a new one");
                return o;
            }
            check(pending.empty(), "need_more with bytes left unconsumed");
        }
    }
    o.buffered = p.buffered();
    check(p.mid_response() == (o.buffered > 0), "mid_response() disagrees with buffered()");
    return o;
}

void compare(const outcome& a, const outcome& b) {
    check(a.responses.size() == b.responses.size(), "whole and pieced input gave different response counts");
    for (std::size_t i = 0; i < a.responses.size(); ++i)
        check(same(a.responses[i], b.responses[i]), "whole and pieced input gave different responses");
    check(a.last == b.last && a.error == b.error, "whole and pieced input ended differently");
    check(a.buffered == b.buffered, "whole and pieced input left different partial state");
}

// quote_astring(s) as a command would send it must read back as s (the server's grammar
// for strings is the same as for responses: a quoted string or a literal).
void check_quoting(std::string_view s) {
    const std::string q = quote_astring(s);
    std::string wire;
    if (needs_literal(s)) {
        check(q == "{" + std::to_string(s.size()) + "}", "a literal marker with the wrong size");
        wire = "* X " + q + "\r\n" + std::string(s) + "\r\n";
    } else if (q.starts_with('"')) {
        wire = "* X " + q + "\r\n";
    } else {
        check(q == s, "an atom that is not the string itself");
        return;  // an atom reads back as an atom, NIL or a number: not a string
    }
    std::error_code ec;
    const auto r = parse_response(wire, ec);
    check(r && !ec, "a quoted or literal astring does not parse");
    check(r->data.size() == 1 && r->data[0].is_string() && r->data[0].text == s,
          "a quoted or literal astring does not read back as itself");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    netpool_fuzz::cutter cut(in);

    // The default limits, and small ones drawn from the input so the limit paths are hit.
    const std::uint64_t r = cut.next();
    response_limits small;
    small.max_line = r % 256;
    small.max_literal = (r >> 8) % 128;
    small.max_depth = (r >> 16) % 6;
    small.max_response = (r >> 24) % 1024;
    for (const auto& lim : {response_limits{}, small}) {
        const outcome whole = run({in}, lim, false);
        compare(whole, run(cut.pieces(in), lim, false));
        compare(whole, run(cut.pieces(in), lim, true));
        std::error_code ec;
        if (auto one = parse_response(in, ec, lim)) {
            check(!ec, "parse_response() returned a response and an error");
            check(whole.responses.size() == 1 && same(*one, whole.responses[0]) && whole.buffered == 0,
                  "parse_response() accepted what the parser did not see as exactly one response");
        } else {
            check(static_cast<bool>(ec), "parse_response() returned neither a response nor an error");
        }
    }
    check_quoting(in);
    return 0;
}
