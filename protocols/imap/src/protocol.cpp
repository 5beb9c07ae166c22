// Pure IMAP helpers: command building, SASL PLAIN, capabilities, and the interpretation of
// SELECT, SEARCH/ESEARCH and FETCH responses.
#include <netpool/imap/protocol.hpp>

#include <netpool/base64.hpp>

#include <algorithm>
#include <charconv>
#include <limits>

namespace netpool::imap {

namespace {

char ascii_upper(char c) noexcept { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_upper(a[i]) != ascii_upper(b[i])) return false;
    return true;
}

bool parse_u32(std::string_view s, std::uint32_t& out) noexcept {
    if (s.empty()) return false;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size();
}

void add_capability(capabilities& c, std::string name) {
    for (auto& ch : name) ch = ascii_upper(ch);
    if (name == "IMAP4REV1") c.imap4rev1 = true;
    else if (name == "IMAP4REV2") {
        c.imap4rev2 = true;
        c.unselect = true;
    }
    else if (name == "STARTTLS") c.starttls = true;
    else if (name == "LOGINDISABLED") c.login_disabled = true;
    else if (name == "SASL-IR") c.sasl_ir = true;
    else if (name == "LITERAL+") c.literal_plus = true;
    else if (name == "LITERAL-") c.literal_minus = true;
    else if (name == "UNSELECT") c.unselect = true;
    c.names.push_back(std::move(name));
}

}  // namespace

bool capabilities::has(std::string_view name) const noexcept {
    return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return iequals(n, name); });
}

std::vector<std::string> build_command(std::string_view tag, std::string_view verb, std::span<const command_arg> args,
                                       bool literal_plus) {
    std::vector<std::string> parts;
    std::string cur;
    cur.append(tag).append(" ").append(verb);
    for (const auto& a : args) {
        cur += ' ';
        if (!a.astring) {
            cur += a.text;
            continue;
        }
        if (!needs_literal(a.text)) {
            cur += quote_astring(a.text);
            continue;
        }
        cur += '{';
        cur += std::to_string(a.text.size());
        if (literal_plus) {
            cur += "+}\r\n";
            cur += a.text;
        } else {
            cur += "}\r\n";
            parts.push_back(std::move(cur));
            cur.assign(a.text);
        }
    }
    cur += "\r\n";
    parts.push_back(std::move(cur));
    return parts;
}

bool can_use_nonsync_literals(const capabilities& caps, std::span<const command_arg> args) noexcept {
    if (caps.literal_plus) return true;
    if (!caps.literal_minus) return false;
    for (const auto& a : args)
        if (a.astring && needs_literal(a.text) && a.text.size() > 4096) return false;
    return true;
}

capabilities parse_capabilities(const std::vector<value>& data) {
    capabilities c;
    for (const auto& v : data)
        if (v.is_atom() || v.is_number()) add_capability(c, v.text);
    return c;
}

capabilities parse_capabilities(std::string_view code_argument) {
    capabilities c;
    while (!code_argument.empty()) {
        const auto sp = code_argument.find(' ');
        const auto item = code_argument.substr(0, sp);
        if (!item.empty()) add_capability(c, std::string(item));
        if (sp == std::string_view::npos) break;
        code_argument.remove_prefix(sp + 1);
    }
    return c;
}

bool apply_untagged(const response& r, mailbox_info& m) {
    if (!r.is_untagged()) return false;
    if (r.number && r.name == "EXISTS") {
        m.exists = *r.number;
        return true;
    }
    if (r.number && r.name == "EXPUNGE") {
        if (m.exists > 0) --m.exists;
        return true;
    }
    if (r.status != "OK" || r.code.empty()) return false;
    const std::string name = r.code_name();
    std::uint32_t n = 0;
    if (name == "UIDVALIDITY" && parse_u32(r.code_argument(), n)) {
        m.uidvalidity = n;
        return true;
    }
    if (name == "UIDNEXT" && parse_u32(r.code_argument(), n)) {
        m.uidnext = n;
        return true;
    }
    if (name == "READ-ONLY") {
        m.read_only = true;
        return true;
    }
    if (name == "READ-WRITE") {
        m.read_only = false;
        return true;
    }
    return false;
}

namespace {

/// Calls f(lo, hi) for each range of "1:3,7,9:8" (lo <= hi); false on a syntax error or
/// when f returns false.
template <class F>
bool for_each_range(std::string_view set, F&& f) {
    while (!set.empty()) {
        const auto comma = set.find(',');
        const auto item = set.substr(0, comma);
        const auto colon = item.find(':');
        std::uint32_t a = 0, b = 0;
        if (!parse_u32(item.substr(0, colon), a) || a == 0) return false;
        b = a;
        if (colon != std::string_view::npos && (!parse_u32(item.substr(colon + 1), b) || b == 0)) return false;
        if (a > b) std::swap(a, b);
        if (!f(a, b)) return false;
        if (comma == std::string_view::npos) break;
        set.remove_prefix(comma + 1);
        if (set.empty()) return false;
    }
    return true;
}

/// How many numbers a sequence set holds (saturated); false on a syntax error.
bool sequence_set_size(std::string_view set, std::size_t& n) {
    n = 0;
    return for_each_range(set, [&](std::uint32_t a, std::uint32_t b) {
        const std::size_t span = static_cast<std::size_t>(b - a) + 1;
        n = span > std::numeric_limits<std::size_t>::max() - n ? std::numeric_limits<std::size_t>::max() : n + span;
        return true;
    });
}

}  // namespace

bool expand_sequence_set(std::string_view set, std::vector<std::uint32_t>& out, std::size_t max_count) {
    // Counted first: nothing is appended (or allocated) for a set over max_count.
    std::size_t n = 0;
    if (!sequence_set_size(set, n) || n > max_count) return false;
    out.reserve(out.size() + n);
    return for_each_range(set, [&](std::uint32_t a, std::uint32_t b) {
        for (std::uint64_t u = a; u <= b; ++u) out.push_back(static_cast<std::uint32_t>(u));
        return true;
    });
}

bool collect_search(const response& r, std::vector<std::uint32_t>& out) {
    // The per-response bound expand_sequence_set has always had.
    const std::size_t max_total = out.size() + (std::size_t{1} << 20);
    return collect_search(r, out, max_total) == search_status::ok;
}

search_status collect_search(const response& r, std::vector<std::uint32_t>& out, std::size_t max_total) {
    if (!r.is_untagged()) return search_status::malformed;
    if (r.name == "SEARCH") {
        for (const auto& v : r.data) {
            if (v.is_list()) continue;  // (MODSEQ n) with CONDSTORE
            if (!v.is_number() || v.number == 0 || v.number > std::numeric_limits<std::uint32_t>::max())
                return search_status::malformed;
            if (out.size() >= max_total) return search_status::too_many;
            out.push_back(static_cast<std::uint32_t>(v.number));
        }
        return search_status::ok;
    }
    if (r.name == "ESEARCH") {
        for (std::size_t i = 0; i < r.data.size(); ++i) {
            if (!r.data[i].is_atom("ALL")) continue;
            if (i + 1 >= r.data.size()) return search_status::malformed;
            const auto& set = r.data[i + 1];
            if (!set.is_atom() && !set.is_number()) return search_status::malformed;
            // Counted before anything is expanded: "1:4294967295" is a few bytes.
            std::size_t n = 0;
            if (!sequence_set_size(set.text, n)) return search_status::malformed;
            const std::size_t room = out.size() < max_total ? max_total - out.size() : 0;
            if (n > room) return search_status::too_many;
            (void)expand_sequence_set(set.text, out, n);  // counted and valid: cannot fail
            return search_status::ok;
        }
        return search_status::ok;  // no ALL: nothing matched
    }
    return search_status::malformed;
}

std::string format_uid_set(std::span<const std::uint32_t> uids) {
    std::vector<std::uint32_t> v(uids.begin(), uids.end());
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    std::string out;
    for (std::size_t i = 0; i < v.size();) {
        std::size_t j = i;
        while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
        if (!out.empty()) out += ',';
        out += std::to_string(v[i]);
        if (j > i) out += ':' + std::to_string(v[j]);
        i = j + 1;
    }
    return out;
}

const value* fetch_item(const value& list, std::string_view name) {
    if (!list.is_list()) return nullptr;
    for (std::size_t i = 0; i + 1 < list.items.size(); i += 2) {
        const value& k = list.items[i];
        if ((k.is_atom() || k.is_number()) && iequals(k.text, name)) return &list.items[i + 1];
    }
    return nullptr;
}

std::string format_address(const value& address) {
    if (!address.is_list() || address.items.size() < 4) return {};
    const std::string_view name = address.items[0].str();
    const std::string_view mailbox = address.items[2].str();
    const std::string_view host = address.items[3].str();
    std::string addr(mailbox);
    if (!host.empty()) addr.append("@").append(host);
    if (name.empty()) return addr;
    return std::string(name) + " <" + addr + ">";
}

std::optional<std::uint32_t> fetch_uid(const response& r) {
    if (!r.is_untagged() || r.name != "FETCH" || r.data.empty() || !r.data[0].is_list()) return std::nullopt;
    const value* uid = fetch_item(r.data[0], "UID");
    if (!uid || !uid->is_number() || uid->number == 0 || uid->number > std::numeric_limits<std::uint32_t>::max())
        return std::nullopt;
    return static_cast<std::uint32_t>(uid->number);
}

std::optional<fetched_message> parse_fetch(const response& r) {
    const auto uid = fetch_uid(r);
    if (!uid) return std::nullopt;
    const value& list = r.data[0];
    fetched_message m;
    m.uid = *uid;
    if (const value* f = fetch_item(list, "FLAGS"); f && f->is_list())
        for (const auto& x : f->items) m.flags.emplace_back(x.str());
    if (const value* s = fetch_item(list, "RFC822.SIZE"); s && s->is_number()) m.size = s->number;
    if (const value* e = fetch_item(list, "ENVELOPE"); e && e->is_list() && e->items.size() >= 3) {
        m.envelope_date = std::string(e->items[0].str());
        m.envelope_subject = std::string(e->items[1].str());
        if (e->items[2].is_list() && !e->items[2].items.empty()) m.envelope_from = format_address(e->items[2].items[0]);
    }
    if (const value* h = fetch_item(list, "BODY[HEADER]")) m.header = std::string(h->str());
    if (const value* b = fetch_item(list, "BODY[]")) m.body = std::string(b->str());
    return m;
}

void merge_fetch(fetched_message& into, fetched_message&& more) {
    if (!more.flags.empty()) into.flags = std::move(more.flags);
    if (!more.envelope_subject.empty()) into.envelope_subject = std::move(more.envelope_subject);
    if (!more.envelope_from.empty()) into.envelope_from = std::move(more.envelope_from);
    if (!more.envelope_date.empty()) into.envelope_date = std::move(more.envelope_date);
    if (more.size) into.size = more.size;
    if (!more.header.empty()) into.header = std::move(more.header);
    if (!more.body.empty()) into.body = std::move(more.body);
}

std::string limit_failure(std::string_view command, limit_errc e, const client_options& o) {
    std::string s(command);
    s += ": ";
    switch (e) {
    case limit_errc::too_many_values:
        s += "one response holds more than limits.max_values = " + std::to_string(o.limits.max_values) + " values";
        break;
    case limit_errc::too_many_search_results:
        s += "more than max_search_results = " + std::to_string(o.max_search_results) + " UIDs";
        break;
    case limit_errc::too_many_unsolicited:
        s += "more than max_unsolicited = " + std::to_string(o.max_unsolicited) +
             " untagged responses the command did not ask for";
        break;
    }
    return s;
}

}  // namespace netpool::imap
