// libFuzzer target: the SMTP reply parser (netpool::smtp::reply_parser), EHLO capability
// parsing and DATA transparency (encode_data).
//
// The input is what a server sends. It is parsed twice per limits, all in one feed() and
// cut into small pieces as reads from a socket would deliver it; both runs must yield the
// same replies and the same final state. Each reply must respect the limits, and
// encode_data() of the input must be undone exactly by the receiver's rules.
#include "fuzz_support.hpp"

#include <netpool/smtp/reply.hpp>

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace netpool::smtp;
using netpool_fuzz::check;

namespace {

struct outcome {
    std::vector<reply> replies;
    reply_parser::status last = reply_parser::status::need_more;
    std::error_code error;
    bool mid_reply = false;
};

bool same(const reply& a, const reply& b) {
    return a.code == b.code && a.status == b.status && a.lines == b.lines;
}

void check_reply(const reply& r, const reply_limits& lim) {
    check(r.code >= 200 && r.code <= 559, "reply code outside 200..559");
    check(!r.lines.empty(), "a reply without lines");
    check(r.lines.size() <= lim.max_lines, "more lines than max_lines");
    for (const auto& l : r.lines) {
        check(l.size() + 2 <= lim.max_line, "a line longer than max_line");
        check(l.find('\n') == std::string::npos, "LF inside a reply line");
    }
    if (r.status) {
        check(r.status->klass == r.code / 100, "enhanced status class differs from the reply code");
        check(r.status->subject >= 0 && r.status->subject <= 999, "enhanced status subject out of range");
        check(r.status->detail >= 0 && r.status->detail <= 999, "enhanced status detail out of range");
        (void)r.status->to_string();
    }
    (void)r.to_string();
    (void)r.positive();
    const capabilities caps = parse_ehlo(r);
    for (const auto& m : caps.auth) check(caps.has_auth(m), "has_auth() misses a mechanism parse_ehlo() found");
}

// fresh: a new parser for every reply, fed what was left over, as the adapter reads;
// otherwise one parser for the whole stream.
outcome run(const std::vector<std::string_view>& pieces, const reply_limits& lim, bool fresh) {
    outcome o;
    reply_parser p(lim);
    std::string pending;  // bytes received and not yet consumed, as the adapter keeps them
    for (std::string_view piece : pieces) {
        pending.append(piece);
        while (!pending.empty()) {
            std::size_t used = 0;
            o.last = p.feed(pending, used);
            check(used <= pending.size(), "feed() consumed more than it was given");
            pending.erase(0, used);
            if (o.last == reply_parser::status::complete) {
                check(used > 0, "a reply completed without consuming a byte");
                o.replies.push_back(p.take());
                check_reply(o.replies.back(), lim);
                if (fresh) p = reply_parser(lim);
                continue;
            }
            if (o.last == reply_parser::status::error) {
                o.error = p.error();
                check(static_cast<bool>(o.error), "status error without an error code");
                std::size_t again = 0;
                check(p.feed("250 OK\r\n", again) == reply_parser::status::error, "an error is not final");
                o.mid_reply = p.mid_reply();
                p.reset();  // reusable after reset(), with nothing of the old stream left
                check(!p.error() && !p.mid_reply(), "reset() left state behind");
                reply_parser fresh_parser(lim);
                std::size_t used_fresh = 0;
                check(p.feed("250 OK\r\n", again) == fresh_parser.feed("250 OK\r\n", used_fresh) &&
                          again == used_fresh && p.error() == fresh_parser.error(),
                      "a parser after reset() differs from a new one");
                return o;
            }
            check(pending.empty(), "need_more with bytes left unconsumed");
        }
    }
    o.mid_reply = p.mid_reply();
    return o;
}

void compare(const outcome& a, const outcome& b) {
    check(a.replies.size() == b.replies.size(), "whole and pieced input gave different reply counts");
    for (std::size_t i = 0; i < a.replies.size(); ++i)
        check(same(a.replies[i], b.replies[i]), "whole and pieced input gave different replies");
    check(a.last == b.last && a.error == b.error, "whole and pieced input ended differently");
    check(a.mid_reply == b.mid_reply, "whole and pieced input left different partial state");
}

// What the receiving server does with DATA content (RFC 5321 4.5.2): lines up to the one
// holding a single ".", a leading dot removed from the others.
void check_data_transparency(std::string_view message) {
    std::string wire;
    encode_data(message, wire);
    check(wire.size() >= 3 && wire.compare(wire.size() - 3, 3, ".\r\n") == 0, "DATA content does not end with .CRLF");
    std::string expected;  // the message with every line end as CRLF, ending with one
    for (std::size_t i = 0; i < message.size(); ++i) {
        const char c = message[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < message.size() && message[i + 1] == '\n') ++i;
            expected += "\r\n";
        } else {
            expected += c;
        }
    }
    if (!expected.empty() && !expected.ends_with("\r\n")) expected += "\r\n";

    std::string received;
    std::size_t pos = 0;
    for (;;) {
        const std::size_t eol = wire.find("\r\n", pos);
        check(eol != std::string::npos, "DATA content has a line without CRLF");
        std::string_view line(wire.data() + pos, eol - pos);
        check(line.find_first_of("\r\n") == std::string_view::npos, "bare CR or LF in DATA content");
        pos = eol + 2;
        if (line == ".") break;
        if (line.starts_with('.')) line.remove_prefix(1);
        received.append(line);
        received += "\r\n";
    }
    check(pos == wire.size(), "bytes after the terminating dot");
    check(received == expected, "DATA content does not decode to the message");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    netpool_fuzz::cutter cut(in);

    // The default limits, and small ones drawn from the input so the limit paths are hit.
    const std::uint64_t r = cut.next();
    const reply_limits limits[] = {reply_limits{},
                                   reply_limits{static_cast<std::size_t>(r % 96), static_cast<std::size_t>((r >> 8) % 6)}};
    for (const auto& lim : limits) {
        const outcome whole = run({in}, lim, false);
        compare(whole, run(cut.pieces(in), lim, false));
        compare(whole, run(cut.pieces(in), lim, true));
        std::error_code ec;
        if (auto one = parse_reply(in, ec, lim)) {
            check(!ec, "parse_reply() returned a reply and an error");
            check(whole.replies.size() == 1 && same(*one, whole.replies[0]) && !whole.mid_reply,
                  "parse_reply() accepted what the parser did not see as exactly one reply");
        } else {
            check(static_cast<bool>(ec), "parse_reply() returned neither a reply nor an error");
        }
    }
    check_data_transparency(in);
    return 0;
}
