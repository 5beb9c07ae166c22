// Histograms and the two exports of pool snapshots: JSON and Prometheus text.
#include <netpool/stats.hpp>

#include <nlohmann/json.hpp>

#include <bit>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>

namespace netpool {
namespace {

// Bucket i's bound, 2^i µs, as an integer count of microseconds; exact, unlike the double.
constexpr std::size_t finite_buckets = histogram::bucket_count - 1;
constexpr std::uint64_t bound_micros(std::size_t i) noexcept { return std::uint64_t{1} << i; }

}  // namespace

// Called on every checkout and check-in, possibly under the pool's lock: integer
// arithmetic and one bit scan, no allocation, no log().
void histogram::record(std::chrono::nanoseconds d) noexcept {
    const std::int64_t ns = d.count() > 0 ? d.count() : 0;  // a clock misuse must not corrupt the sum
    // Round up: a value of 1.5 µs is not <= 1 µs, so it belongs to the 2 µs bucket.
    const auto micros = static_cast<std::uint64_t>(ns / 1000 + (ns % 1000 != 0 ? 1 : 0));
    // Smallest i with micros <= 2^i is bit_width(micros - 1); 0 and 1 µs land in bucket 0.
    const std::size_t i = micros <= 1 ? 0 : static_cast<std::size_t>(std::bit_width(micros - 1));
    ++buckets[i < finite_buckets ? i : finite_buckets];
    ++count;
    sum_seconds += static_cast<double>(ns) / 1e9;  // division: whole seconds stay exact
}

double histogram::upper_bound_seconds(std::size_t i) noexcept {
    if (i >= finite_buckets) return std::numeric_limits<double>::infinity();
    return static_cast<double>(bound_micros(i)) / 1e6;
}

double histogram::quantile(double q) const noexcept {
    if (count == 0) return 0.0;
    if (!(q > 0.0)) q = 0.0;  // also maps NaN to the minimum
    if (q > 1.0) q = 1.0;
    // The rank of the q-th observation (1-based); q = 0 asks for the smallest one.
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count)));
    if (rank < 1) rank = 1;
    if (rank > count) rank = count;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += buckets[i];
        if (seen >= rank) return upper_bound_seconds(i);
    }
    // Only reachable if count disagrees with the buckets (a hand-built histogram).
    return upper_bound_seconds(bucket_count - 1);
}

void histogram::merge(const histogram& o) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) buckets[i] += o.buckets[i];
    count += o.count;
    sum_seconds += o.sum_seconds;
}

namespace {

using json = nlohmann::json;

// Quantiles past the last finite bucket are +inf, which JSON cannot hold: null says
// "beyond 67 s" without inventing a number.
json seconds_or_null(double s) { return std::isfinite(s) ? json(s) : json(nullptr); }

// The overflow bucket is left out: its cumulative count is always `count`, and its bound
// (+inf) has no JSON number, as Prometheus' +Inf bucket equals _count.
json histogram_json(const histogram& h) {
    json buckets = json::array();
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < finite_buckets; ++i) {
        cumulative += h.buckets[i];
        buckets.push_back({{"le", histogram::upper_bound_seconds(i)}, {"count", cumulative}});
    }
    return {
        {"count", h.count},
        {"sum_seconds", h.sum_seconds},
        {"p50", seconds_or_null(h.quantile(0.50))},
        {"p95", seconds_or_null(h.quantile(0.95))},
        {"p99", seconds_or_null(h.quantile(0.99))},
        {"buckets", std::move(buckets)},
    };
}

json pool_json(const pool_stats& s) {
    json checkouts = json::object();
    for (std::size_t i = 0; i < checkout_result_count; ++i)
        checkouts[to_string(static_cast<checkout_result>(i))] = s.checkouts[i];
    json closes = json::object();
    for (std::size_t i = 0; i < close_reason_count; ++i)
        closes[to_string(static_cast<close_reason>(i))] = s.closes[i];

    return {
        {"name", s.name},
        {"endpoint", s.endpoint},
        {"protocol", s.protocol},
        {"idle", s.idle},
        {"leased", s.leased},
        {"connecting", s.connecting},
        {"busy", s.busy},
        {"overflow", s.overflow},
        {"waiters", s.waiters},
        {"size", s.size},
        {"max_overflow", s.max_overflow},
        {"endpoint_down", s.endpoint_down},
        {"draining", s.draining},
        {"checkouts", std::move(checkouts)},
        {"closes", std::move(closes)},
        {"connects_ok", s.connects_ok},
        {"connects_failed", s.connects_failed},
        {"health_checks_failed", s.health_checks_failed},
        {"leases_overdue", s.leases_overdue},
        {"adapter_exceptions", s.adapter_exceptions},
        {"checkout_wait", histogram_json(s.checkout_wait)},
        {"connect_time", histogram_json(s.connect_time)},
        {"lease_time", histogram_json(s.lease_time)},
    };
}

// ---- Prometheus text exposition 0.0.4 ----

// Label values may hold anything a user named a pool; these three would break the line.
void append_label_value(std::string& out, std::string_view v) {
    for (char c : v) {
        switch (c) {
        case '\\': out += "\\\\"; break;
        case '"': out += "\\\""; break;
        case '\n': out += "\\n"; break;
        default: out += c;
        }
    }
}

// Shortest text that reads back as the same double; Prometheus spells infinity "+Inf".
void append_number(std::string& out, double v) {
    if (std::isnan(v)) { out += "NaN"; return; }
    if (std::isinf(v)) { out += v > 0 ? "+Inf" : "-Inf"; return; }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_number(std::string& out, std::uint64_t v) { out += std::to_string(v); }

// Bucket bounds printed from the exact microsecond count ("0.000512", "67.108864"),
// so they are stable across platforms and free of binary-fraction noise.
std::string bound_label(std::size_t i) {
    if (i >= finite_buckets) return "+Inf";
    const std::uint64_t us = bound_micros(i);
    std::string frac = std::to_string(us % 1000000);
    frac.insert(0, 6 - frac.size(), '0');
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    std::string out = std::to_string(us / 1000000);
    if (!frac.empty()) out += '.' + frac;
    return out;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;  // constant text written here: no backslash or newline to escape
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

struct label {
    std::string_view name;
    std::string_view value;
};

template <class V>
void sample(std::string& out, std::string_view name, const pool_stats& s, V value,
            std::initializer_list<label> extra = {}) {
    out += name;
    out += "{pool=\"";
    append_label_value(out, s.name);
    out += "\",endpoint=\"";  // a pool of a pool_set is told from its siblings by either
    append_label_value(out, s.endpoint);
    out += '"';
    for (const auto& l : extra) {
        out += ',';
        out += l.name;
        out += "=\"";
        append_label_value(out, l.value);
        out += '"';
    }
    out += "} ";
    append_number(out, value);
    out += '\n';
}

std::uint64_t u(std::size_t v) { return static_cast<std::uint64_t>(v); }
std::uint64_t u(bool v) { return v ? 1 : 0; }

void histogram_family(std::string& out, const std::vector<pool_stats>& all, std::string_view name,
                      std::string_view help, histogram pool_stats::*member) {
    family(out, name, "histogram", help);
    const std::string bucket = std::string(name) + "_bucket";
    const std::string sum = std::string(name) + "_sum";
    const std::string cnt = std::string(name) + "_count";
    for (const auto& s : all) {
        const histogram& h = s.*member;
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < histogram::bucket_count; ++i) {
            cumulative += h.buckets[i];
            // The +Inf bucket must equal _count; use count so a hand-built snapshot whose
            // buckets disagree still yields a self-consistent exposition.
            const std::uint64_t v = i + 1 == histogram::bucket_count ? h.count : cumulative;
            const std::string le = bound_label(i);
            sample(out, bucket, s, v, {{"le", le}});
        }
        sample(out, sum, s, h.sum_seconds);
        sample(out, cnt, s, h.count);
    }
}

}  // namespace

std::string to_json(const pool_stats& s) { return pool_json(s).dump(); }

std::string to_json(const std::vector<pool_stats>& all) {
    json arr = json::array();
    for (const auto& s : all) arr.push_back(pool_json(s));
    return arr.dump();
}

// Precondition: pool names are unique (the registry guarantees it); two snapshots with
// one name would produce duplicate series, which Prometheus rejects.
std::string to_prometheus(const std::vector<pool_stats>& all) {
    std::string out;
    out.reserve(all.size() * 12000 + 4096);

    family(out, "netpool_pool_info", "gauge", "Constant 1; labels carry the pool's endpoint and protocol.");
    for (const auto& s : all)
        sample(out, "netpool_pool_info", s, std::uint64_t{1}, {{"protocol", s.protocol}});

    family(out, "netpool_connections", "gauge", "Open or opening connections by state.");
    for (const auto& s : all) {
        sample(out, "netpool_connections", s, u(s.idle), {{"state", "idle"}});
        sample(out, "netpool_connections", s, u(s.leased), {{"state", "leased"}});
        sample(out, "netpool_connections", s, u(s.connecting), {{"state", "connecting"}});
        sample(out, "netpool_connections", s, u(s.busy), {{"state", "busy"}});
    }

    family(out, "netpool_overflow_connections", "gauge", "Connections open beyond the configured size.");
    for (const auto& s : all) sample(out, "netpool_overflow_connections", s, u(s.overflow));

    family(out, "netpool_size", "gauge", "Configured base number of connections.");
    for (const auto& s : all) sample(out, "netpool_size", s, u(s.size));

    family(out, "netpool_max_overflow", "gauge", "Configured maximum of overflow connections.");
    for (const auto& s : all) sample(out, "netpool_max_overflow", s, u(s.max_overflow));

    family(out, "netpool_waiters", "gauge", "Checkouts waiting for a connection.");
    for (const auto& s : all) sample(out, "netpool_waiters", s, u(s.waiters));

    family(out, "netpool_endpoint_down", "gauge", "1 while the endpoint is declared down and checkouts fail fast.");
    for (const auto& s : all) sample(out, "netpool_endpoint_down", s, u(s.endpoint_down));

    family(out, "netpool_draining", "gauge", "1 while the pool is draining or closed.");
    for (const auto& s : all) sample(out, "netpool_draining", s, u(s.draining));

    family(out, "netpool_checkouts_total", "counter", "Checkouts by outcome.");
    for (const auto& s : all) {
        for (std::size_t i = 0; i < checkout_result_count; ++i)
            sample(out, "netpool_checkouts_total", s, s.checkouts[i],
                   {{"result", to_string(static_cast<checkout_result>(i))}});
    }

    family(out, "netpool_connects_total", "counter", "Connection attempts (connect and handshake) by outcome.");
    for (const auto& s : all) {
        sample(out, "netpool_connects_total", s, s.connects_ok, {{"result", "ok"}});
        sample(out, "netpool_connects_total", s, s.connects_failed, {{"result", "fail"}});
    }

    family(out, "netpool_closes_total", "counter", "Closed connections by reason.");
    for (const auto& s : all) {
        for (std::size_t i = 0; i < close_reason_count; ++i)
            sample(out, "netpool_closes_total", s, s.closes[i], {{"reason", to_string(static_cast<close_reason>(i))}});
    }

    family(out, "netpool_health_checks_failed_total", "counter", "Failed health checks and keepalives.");
    for (const auto& s : all) sample(out, "netpool_health_checks_failed_total", s, s.health_checks_failed);

    family(out, "netpool_leases_overdue_total", "counter", "Leases held longer than lease_deadline.");
    for (const auto& s : all) sample(out, "netpool_leases_overdue_total", s, s.leases_overdue);

    family(out, "netpool_adapter_exceptions_total", "counter", "Exceptions thrown by protocol adapter hooks.");
    for (const auto& s : all) sample(out, "netpool_adapter_exceptions_total", s, s.adapter_exceptions);

    histogram_family(out, all, "netpool_checkout_wait_seconds", "Time from checkout request to lease.",
                     &pool_stats::checkout_wait);
    histogram_family(out, all, "netpool_connect_seconds", "Time to connect and complete the handshake.",
                     &pool_stats::connect_time);
    histogram_family(out, all, "netpool_lease_seconds", "Time a lease was held.", &pool_stats::lease_time);
    return out;
}

}  // namespace netpool
