// pool_options: validation, and reading/writing them as JSON.
#include <netpool/options.hpp>
#include <netpool/options_json.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <type_traits>

namespace netpool {
namespace {

using json = nlohmann::json;

struct problem {
    std::string field;  // struct member name
    std::string text;
};

// There is no upper bound: durations saturate (a value past a century means "never"; see
// time.hpp), so milliseconds::max() is a valid way to say "no limit".
// Only values the pool cannot honour are rejected. Merely odd ones (a 1 ms keepalive, a
// health_check_timeout longer than keepalive_interval, max_uses = 1) are well defined,
// and may be exactly what a test or a benchmark wants, so they pass.
std::optional<problem> first_problem(const pool_options& o) {
    auto range = [](const char* name, duration d, bool zero_ok) -> std::optional<problem> {
        if (d.count() < 0) return problem{name, "must not be negative"};
        if (!zero_ok && d.count() == 0) return problem{name, "must be greater than 0"};
        return std::nullopt;
    };
    // Keeps NaN out too: every comparison with NaN is false.
    auto fraction = [](const char* name, double v, double hi) -> std::optional<problem> {
        if (!(v >= 0.0 && v <= hi)) {
            return problem{name, "must be in [0, " + std::string(hi == 0.5 ? "0.5" : "1") + "]"};
        }
        return std::nullopt;
    };

    if (o.max_overflow > std::numeric_limits<std::size_t>::max() - o.size)
        return problem{"max_overflow", "size + max_overflow overflows"};
    if (o.size + o.max_overflow == 0)
        return problem{"size", "size + max_overflow must be at least 1 (a pool without workers can serve no checkout)"};
    if (auto p = range("overflow_ttl", o.overflow_ttl, true)) return p;
    if (auto p = range("checkout_timeout", o.checkout_timeout, false)) return p;
    if (o.order != idle_order::lifo && o.order != idle_order::fifo) return problem{"order", "must be lifo or fifo"};
    if (auto p = range("connect_timeout", o.connect_timeout, false)) return p;
    if (auto p = range("handshake_timeout", o.handshake_timeout, false)) return p;
    if (auto p = range("dns_refresh", o.dns_refresh, true)) return p;
    if (auto p = range("close_timeout", o.close_timeout, false)) return p;
    if (auto p = range("reset_timeout", o.reset_timeout, false)) return p;
    if (auto p = range("health_check_timeout", o.health_check_timeout, false)) return p;
    if (auto p = range("health_check_after_idle", o.health_check_after_idle, true)) return p;
    if (auto p = range("keepalive_interval", o.keepalive_interval, true)) return p;
    if (auto p = range("idle_timeout", o.idle_timeout, true)) return p;
    if (auto p = range("max_lifetime", o.max_lifetime, true)) return p;
    if (auto p = fraction("lifetime_jitter", o.lifetime_jitter, 0.5)) return p;
    if (auto p = range("lease_deadline", o.lease_deadline, true)) return p;
    if (auto p = range("backoff_initial", o.backoff_initial, false)) return p;
    if (auto p = range("backoff_max", o.backoff_max, false)) return p;
    if (o.backoff_max < o.backoff_initial) return problem{"backoff_max", "must be >= backoff_initial"};
    if (auto p = fraction("backoff_jitter", o.backoff_jitter, 1.0)) return p;
    if (o.max_restarts < 1)
        return problem{"max_restarts", "must be at least 1 (0 would declare the endpoint down before any restart)"};
    if (auto p = range("restart_period", o.restart_period, false)) return p;
    if (auto p = range("down_cooldown", o.down_cooldown, false)) return p;
    return std::nullopt;
}

// One list of (name, member) pairs drives parsing, unknown-field detection and to_json,
// so adding a field in one place cannot be forgotten in the others.
template <class Options, class F>
void for_each_field(Options& o, F&& f) {
    f("size", o.size);
    f("max_overflow", o.max_overflow);
    f("lazy", o.lazy);
    f("overflow_ttl", o.overflow_ttl);
    f("checkout_timeout", o.checkout_timeout);
    f("max_waiters", o.max_waiters);
    f("order", o.order);
    f("connect_timeout", o.connect_timeout);
    f("handshake_timeout", o.handshake_timeout);
    f("dns_refresh", o.dns_refresh);
    f("close_timeout", o.close_timeout);
    f("reset_timeout", o.reset_timeout);
    f("health_check_timeout", o.health_check_timeout);
    f("health_check_after_idle", o.health_check_after_idle);
    f("keepalive_interval", o.keepalive_interval);
    f("idle_timeout", o.idle_timeout);
    f("max_lifetime", o.max_lifetime);
    f("lifetime_jitter", o.lifetime_jitter);
    f("max_uses", o.max_uses);
    f("lease_deadline", o.lease_deadline);
    f("backoff_initial", o.backoff_initial);
    f("backoff_max", o.backoff_max);
    f("backoff_jitter", o.backoff_jitter);
    f("max_restarts", o.max_restarts);
    f("restart_period", o.restart_period);
    f("down_cooldown", o.down_cooldown);
}

// RFC 6901: '~' and '/' inside a key are escaped so the pointer stays unambiguous.
std::string pointer(std::string_view prefix, std::string_view key) {
    std::string out(prefix);
    out += '/';
    for (char c : key) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out += c;
    }
    return out;
}

std::string root_pointer(std::string_view prefix) { return prefix.empty() ? std::string("/") : std::string(prefix); }

// A JSON integer >= 0, whether it was parsed (unsigned) or built in code (signed).
std::optional<std::uint64_t> non_negative_integer(const json& v) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer()) {
        const auto s = v.get<std::int64_t>();
        if (s >= 0) return static_cast<std::uint64_t>(s);
    }
    return std::nullopt;
}

void read(const json& v, const std::string& path, bool& out) {
    if (!v.is_boolean()) throw config_error(path, "expected true or false");
    out = v.get<bool>();
}

template <class T>
    requires(std::is_unsigned_v<T> && !std::is_same_v<T, bool>)
void read(const json& v, const std::string& path, T& out) {
    const auto n = non_negative_integer(v);
    if (!n) throw config_error(path, "expected a non-negative integer");
    if (*n > std::numeric_limits<T>::max()) throw config_error(path, "too large");
    out = static_cast<T>(*n);
}

void read(const json& v, const std::string& path, duration& out) {
    const auto n = non_negative_integer(v);
    if (!n) throw config_error(path, "expected a non-negative integer (milliseconds)");
    if (*n > static_cast<std::uint64_t>(std::numeric_limits<duration::rep>::max()))
        throw config_error(path, "too large");
    out = duration{static_cast<duration::rep>(*n)};
}

void read(const json& v, const std::string& path, double& out) {
    if (!v.is_number()) throw config_error(path, "expected a number");
    out = v.get<double>();
}

void read(const json& v, const std::string& path, idle_order& out) {
    if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        if (s == "lifo") { out = idle_order::lifo; return; }
        if (s == "fifo") { out = idle_order::fifo; return; }
    }
    throw config_error(path, R"(expected "lifo" or "fifo")");
}

json write(duration d) { return d.count(); }
json write(idle_order o) { return o == idle_order::fifo ? "fifo" : "lifo"; }
template <class T> json write(const T& v) { return v; }

// nlohmann's what() reads "[json.exception.parse_error.101] parse error at line 1,
// column 2: <detail>"; the byte offset is reported separately, so keep only the detail.
std::string parse_error_detail(const json::exception& e) {
    std::string_view w = e.what();
    if (auto p = w.find("] "); p != std::string_view::npos && w.starts_with('[')) w.remove_prefix(p + 2);
    if (w.starts_with("parse error at line")) {
        if (auto p = w.find(": "); p != std::string_view::npos) w.remove_prefix(p + 2);
    }
    return std::string(w);
}

}  // namespace

void pool_options::validate() const {
    if (auto p = first_problem(*this)) throw config_error(std::move(p->field), p->text);
}

namespace detail {

pool_options parse_pool_options_at(const nlohmann::json& j, std::string_view path_prefix) {
    if (!j.is_object()) throw config_error(root_pointer(path_prefix), "expected a JSON object of pool options");

    pool_options o;
    std::size_t matched = 0;
    for_each_field(o, [&](const char* name, auto& member) {
        if (auto it = j.find(name); it != j.end()) {
            read(*it, pointer(path_prefix, name), member);
            ++matched;
        }
    });
    // Some key did not match a field: find it to name it. A typo must not silently
    // leave a default in place.
    if (matched != j.size()) {
        for (const auto& item : j.items()) {
            bool known = false;
            for_each_field(std::as_const(o), [&](const char* name, const auto&) { known = known || item.key() == name; });
            if (!known) throw config_error(pointer(path_prefix, item.key()), "unknown field");
        }
    }

    if (auto p = first_problem(o)) throw config_error(pointer(path_prefix, p->field), p->text);
    return o;
}

}  // namespace detail

pool_options parse_pool_options(std::string_view json_text) {
    // nlohmann keeps the last of duplicate keys silently; in a config file a duplicate is
    // almost always an edit mistake, so the top-level object rejects them. Only depth 1:
    // deeper objects are not pool options and fail as wrong types anyway.
    std::set<std::string, std::less<>> seen;
    std::optional<std::string> duplicate;
    auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::key && depth == 1 && !duplicate) {
            auto key = parsed.get<std::string>();
            if (!seen.insert(key).second) duplicate = std::move(key);
        }
        return true;
    };

    json j;
    try {
        j = json::parse(json_text, on_event);
    } catch (const json::parse_error& e) {
        throw config_error("/", "invalid JSON: " + parse_error_detail(e) + " at byte " + std::to_string(e.byte));
    } catch (const json::exception& e) {
        // Not a syntax error but still bad input, e.g. out_of_range for "1e400".
        throw config_error("/", "invalid JSON: " + parse_error_detail(e));
    }
    if (duplicate) throw config_error(pointer("", *duplicate), "duplicate field");
    return detail::parse_pool_options_at(j, "");
}

nlohmann::json to_json(const pool_options& o) {
    json j = json::object();
    for_each_field(o, [&](const char* name, const auto& member) { j[name] = write(member); });
    return j;
}

}  // namespace netpool
