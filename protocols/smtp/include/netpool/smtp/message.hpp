// Building a message: a small RFC 5322 builder (UTF-8 text/plain). smtp::message and
// smtp::envelope themselves are in types.hpp; message::render() and make_envelope() are
// defined in message.cpp.
#pragma once

#include <netpool/smtp/types.hpp>

#include <string>
#include <string_view>

namespace netpool::smtp {

/// The addr-spec of a mailbox: the text inside the last "<...>" if there is one, else the
/// text itself; surrounding spaces removed. "Ann <ann@x.org>" -> "ann@x.org".
std::string address_of(std::string_view mailbox);

/// "=?UTF-8?B?...?=" encoded words (each at most 75 bytes, split only on UTF-8 character
/// boundaries, separated by CRLF SP so they fold) when `text` is not printable ASCII or
/// contains "=?"; `text` unchanged otherwise.
std::string encode_header_word(std::string_view text);

}  // namespace netpool::smtp
