// The pure parts of an IMAP client: command building (astrings, literals), SASL PLAIN,
// capabilities, SELECT/SEARCH/FETCH response interpretation, UID sets. No
// sockets (no Asio), so the adapter's decisions are unit-tested with strings.
#pragma once

#include <netpool/imap/error.hpp>
#include <netpool/imap/response.hpp>
#include <netpool/imap/types.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace netpool::imap {

/// One argument of a command: sent as is (`raw`: sequence sets, criteria, fetch items), or
/// as an astring (quoted or a literal as needed: mailbox names, user names, passwords).
struct command_arg {
    std::string_view text;
    bool astring = true;
};

/// The bytes of a command, cut where the client must wait for a continuation ("+") before
/// sending on: parts[i] for i < last ends with a synchronizing literal marker "{N}\r\n".
/// With `literal_plus` (LITERAL+, or LITERAL- and every literal <= 4096 bytes), literals
/// are "{N+}" and the command is one part. The last part ends with CRLF.
std::vector<std::string> build_command(std::string_view tag, std::string_view verb,
                                       std::span<const command_arg> args, bool literal_plus);
/// True when `caps` lets every literal of these args be non-synchronizing.
bool can_use_nonsync_literals(const capabilities& caps, std::span<const command_arg> args) noexcept;

/// Capabilities from a CAPABILITY response's data, or from a [CAPABILITY ...] code's text.
capabilities parse_capabilities(const std::vector<value>& data);
capabilities parse_capabilities(std::string_view code_argument);

/// Folds one untagged response into the mailbox being selected or already selected:
/// EXISTS, EXPUNGE, [UIDVALIDITY n], [UIDNEXT n], [READ-ONLY]/[READ-WRITE]. Returns true
/// when it used the response.
bool apply_untagged(const response& r, mailbox_info& m);

/// UIDs from an untagged SEARCH (numbers) or ESEARCH (ALL sequence-set) response; appends
/// to `out`. Returns false if the response is neither or is malformed (an ESEARCH set of
/// more than 2^20 UIDs included).
bool collect_search(const response& r, std::vector<std::uint32_t>& out);
/// What collect_search with a bound made of one response.
enum class search_status { ok, malformed, too_many };
/// As above, but `out` never grows beyond `max_total` UIDs (all responses of a command
/// together): too_many when this response would take it further (what fitted of a SEARCH
/// response stays appended; an ESEARCH set is counted before it is expanded).
search_status collect_search(const response& r, std::vector<std::uint32_t>& out, std::size_t max_total);
/// Expands "1:3,7,9:8" (no '*') into UIDs, appending to `out`; false on a syntax error or
/// more than `max_count` numbers.
bool expand_sequence_set(std::string_view set, std::vector<std::uint32_t>& out, std::size_t max_count = 1u << 20);
/// "1:3,7" from UIDs (any order; sorted and deduplicated first); "" for none.
std::string format_uid_set(std::span<const std::uint32_t> uids);

/// The UID of an untagged FETCH response (its UID item), or nullopt (not a FETCH, or no
/// valid UID: an unsolicited flag update). Cheap: looks at the UID item only.
std::optional<std::uint32_t> fetch_uid(const response& r);
/// The message in an untagged FETCH response (UID, FLAGS, ENVELOPE, RFC822.SIZE,
/// BODY[HEADER], BODY[]); nullopt if it is not a FETCH or carries no UID. Items that are
/// missing stay empty.
std::optional<fetched_message> parse_fetch(const response& r);
/// Merges `more` (a second FETCH response for the same UID) into `into`: non-empty fields win.
void merge_fetch(fetched_message& into, fetched_message&& more);
/// The value following attribute `name` (case-insensitive) in a FETCH attribute list, or null.
const value* fetch_item(const value& list, std::string_view name);

/// "Name <mailbox@host>" or "mailbox@host" from one ENVELOPE address (name adl mailbox host).
std::string format_address(const value& address);

/// What session::last_failure says when a limit stopped `command` ("UID FETCH",
/// "greeting"...): the command, the option's name as validate() spells it and its value, e.g.
/// "UID SEARCH: more than max_search_results = 1000000 UIDs".
std::string limit_failure(std::string_view command, limit_errc e, const client_options& o);

}  // namespace netpool::imap
