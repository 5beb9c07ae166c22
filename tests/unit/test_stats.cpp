// Histograms and the JSON / Prometheus exports of pool snapshots.
#include <netpool/stats.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>

#include <unistd.h>

using namespace std::chrono_literals;
using netpool::histogram;
using netpool::pool_stats;

namespace {

std::size_t bucket_of(std::chrono::nanoseconds d) {
    histogram h;
    h.record(d);
    for (std::size_t i = 0; i < histogram::bucket_count; ++i)
        if (h.buckets[i] == 1) return i;
    return 999;
}

pool_stats sample_stats(std::string name) {
    pool_stats s;
    s.name = std::move(name);
    s.endpoint = "127.0.0.1:2525+starttls";
    s.protocol = "smtp";
    s.idle = 3;
    s.leased = 2;
    s.connecting = 1;
    s.busy = 1;
    s.overflow = 1;
    s.waiters = 4;
    s.size = 5;
    s.max_overflow = 2;
    s.endpoint_down = true;
    s.checkouts[static_cast<std::size_t>(netpool::checkout_result::ok)] = 40;
    s.checkouts[static_cast<std::size_t>(netpool::checkout_result::timeout)] = 2;
    s.closes[static_cast<std::size_t>(netpool::close_reason::max_uses)] = 7;
    s.connects_ok = 9;
    s.connects_failed = 1;
    s.health_checks_failed = 3;
    s.checkout_wait.record(3us);
    s.checkout_wait.record(500us);
    s.connect_time.record(20ms);
    s.lease_time.record(2min);  // overflow bucket
    return s;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

bool has_line(const std::string& text, const std::string& line) {
    for (const auto& l : lines_of(text))
        if (l == line) return true;
    return false;
}

std::string read_all(const std::string& path) {
    std::ifstream f(path);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_SUITE("stats") {

TEST_CASE("histogram buckets at their edges") {
    CHECK(bucket_of(0ns) == 0);
    CHECK(bucket_of(-5ms) == 0);  // clamped, not wrapped
    CHECK(bucket_of(1ns) == 0);
    CHECK(bucket_of(1us) == 0);
    CHECK(bucket_of(1001ns) == 1);
    CHECK(bucket_of(2us) == 1);
    CHECK(bucket_of(2001ns) == 2);
    CHECK(bucket_of(4us) == 2);
    CHECK(bucket_of(5us) == 3);
    CHECK(bucket_of(1024us) == 10);
    CHECK(bucket_of(1025us) == 11);
    CHECK(bucket_of(std::chrono::microseconds(1 << 26)) == 26);
    CHECK(bucket_of(std::chrono::microseconds(1 << 26) + 1ns) == 27);
    CHECK(bucket_of(24h) == 27);
    CHECK(bucket_of(std::chrono::nanoseconds::max()) == 27);
}

TEST_CASE("histogram bounds") {
    CHECK(histogram::upper_bound_seconds(0) == doctest::Approx(1e-6));
    CHECK(histogram::upper_bound_seconds(10) == doctest::Approx(1024e-6));
    CHECK(histogram::upper_bound_seconds(26) == doctest::Approx(67.108864));
    CHECK(std::isinf(histogram::upper_bound_seconds(27)));
}

TEST_CASE("histogram count, sum and negative values") {
    histogram h;
    h.record(1500us);
    h.record(500us);
    h.record(-1s);
    CHECK(h.count == 3);
    CHECK(h.sum_seconds == doctest::Approx(0.002));
}

TEST_CASE("histogram quantiles") {
    histogram h;
    CHECK(h.quantile(0.5) == 0.0);  // empty

    for (int i = 0; i < 90; ++i) h.record(1us);
    for (int i = 0; i < 10; ++i) h.record(1000us);
    CHECK(h.quantile(0.0) == doctest::Approx(1e-6));
    CHECK(h.quantile(0.5) == doctest::Approx(1e-6));
    CHECK(h.quantile(0.9) == doctest::Approx(1e-6));     // rank 90: still bucket 0
    CHECK(h.quantile(0.91) == doctest::Approx(1024e-6));  // rank 91: first slow value
    CHECK(h.quantile(1.0) == doctest::Approx(1024e-6));
    CHECK(h.quantile(7.0) == doctest::Approx(1024e-6));   // clamped
    CHECK(h.quantile(-1.0) == doctest::Approx(1e-6));     // clamped
    CHECK(h.quantile(std::nan("")) == doctest::Approx(1e-6));

    h.record(10min);
    CHECK(std::isinf(h.quantile(1.0)));
}

TEST_CASE("histogram merge") {
    histogram a, b;
    a.record(1us);
    b.record(1us);
    b.record(3s);
    a.merge(b);
    CHECK(a.count == 3);
    CHECK(a.buckets[0] == 2);
    CHECK(a.sum_seconds == doctest::Approx(3.000002));
}

TEST_CASE("JSON of one pool") {
    const auto j = nlohmann::json::parse(netpool::to_json(sample_stats("mail")));
    CHECK(j.at("name") == "mail");
    CHECK(j.at("endpoint") == "127.0.0.1:2525+starttls");
    CHECK(j.at("protocol") == "smtp");
    CHECK(j.at("idle") == 3);
    CHECK(j.at("leased") == 2);
    CHECK(j.at("waiters") == 4);
    CHECK(j.at("endpoint_down") == true);
    CHECK(j.at("draining") == false);
    CHECK(j.at("checkouts").at("ok") == 40);
    CHECK(j.at("checkouts").at("timeout") == 2);
    CHECK(j.at("checkouts").at("endpoint_down") == 0);
    CHECK(j.at("checkouts").size() == netpool::checkout_result_count);
    CHECK(j.at("closes").at("max_uses") == 7);
    CHECK(j.at("closes").size() == netpool::close_reason_count);
    CHECK(j.at("connects_ok") == 9);
    CHECK(j.at("connects_failed") == 1);
    CHECK(j.at("health_checks_failed") == 3);

    const auto& wait = j.at("checkout_wait");
    CHECK(wait.at("count") == 2);
    CHECK(wait.at("sum_seconds").get<double>() == doctest::Approx(503e-6));
    CHECK(wait.at("p50").get<double>() == doctest::Approx(4e-6));
    CHECK(wait.at("p99").get<double>() == doctest::Approx(512e-6));
    const auto& buckets = wait.at("buckets");
    REQUIRE(buckets.size() == histogram::bucket_count - 1);  // +Inf is implied by count
    CHECK(buckets.at(0).at("le").get<double>() == doctest::Approx(1e-6));
    CHECK(buckets.at(1).at("count") == 0);
    CHECK(buckets.at(2).at("count") == 1);  // cumulative
    CHECK(buckets.at(9).at("count") == 2);
    CHECK(buckets.back().at("count") == 2);

    // Beyond the last finite bucket the quantile is unknown: null, not a made-up number.
    CHECK(j.at("lease_time").at("p99").is_null());
    CHECK(j.at("lease_time").at("count") == 1);
}

TEST_CASE("JSON of several pools is an array") {
    const auto j = nlohmann::json::parse(netpool::to_json(std::vector{sample_stats("a"), sample_stats("b")}));
    REQUIRE(j.is_array());
    REQUIRE(j.size() == 2);
    CHECK(j[1].at("name") == "b");
    CHECK(nlohmann::json::parse(netpool::to_json(std::vector<pool_stats>{})).empty());
}

TEST_CASE("Prometheus text structure") {
    const std::string text = netpool::to_prometheus({sample_stats("mail"), sample_stats("we\"ird\\na\nme")});
    REQUIRE(!text.empty());
    CHECK(text.back() == '\n');

    CHECK(has_line(text, R"(netpool_connections{pool="mail",endpoint="127.0.0.1:2525+starttls",state="idle"} 3)"));
    CHECK(has_line(text, R"(netpool_connections{pool="mail",endpoint="127.0.0.1:2525+starttls",state="leased"} 2)"));
    CHECK(has_line(text, R"(netpool_waiters{pool="mail",endpoint="127.0.0.1:2525+starttls"} 4)"));
    CHECK(has_line(text, R"(netpool_endpoint_down{pool="mail",endpoint="127.0.0.1:2525+starttls"} 1)"));
    CHECK(has_line(text, R"(netpool_checkouts_total{pool="mail",endpoint="127.0.0.1:2525+starttls",result="ok"} 40)"));
    CHECK(has_line(text, R"(netpool_checkouts_total{pool="mail",endpoint="127.0.0.1:2525+starttls",result="endpoint_down"} 0)"));
    CHECK(has_line(text, R"(netpool_connects_total{pool="mail",endpoint="127.0.0.1:2525+starttls",result="fail"} 1)"));
    CHECK(has_line(text, R"(netpool_closes_total{pool="mail",endpoint="127.0.0.1:2525+starttls",reason="max_uses"} 7)"));
    CHECK(has_line(text, "# TYPE netpool_checkouts_total counter"));
    CHECK(has_line(text, "# TYPE netpool_checkout_wait_seconds histogram"));
    CHECK(has_line(text, R"(netpool_checkout_wait_seconds_bucket{pool="mail",endpoint="127.0.0.1:2525+starttls",le="0.000001"} 0)"));
    CHECK(has_line(text, R"(netpool_checkout_wait_seconds_bucket{pool="mail",endpoint="127.0.0.1:2525+starttls",le="0.000004"} 1)"));
    CHECK(has_line(text, R"(netpool_checkout_wait_seconds_bucket{pool="mail",endpoint="127.0.0.1:2525+starttls",le="67.108864"} 2)"));
    CHECK(has_line(text, R"(netpool_checkout_wait_seconds_bucket{pool="mail",endpoint="127.0.0.1:2525+starttls",le="+Inf"} 2)"));
    CHECK(has_line(text, R"(netpool_checkout_wait_seconds_count{pool="mail",endpoint="127.0.0.1:2525+starttls"} 2)"));
    CHECK(has_line(text, R"(netpool_lease_seconds_bucket{pool="mail",endpoint="127.0.0.1:2525+starttls",le="67.108864"} 0)"));
    CHECK(has_line(text, R"(netpool_lease_seconds_bucket{pool="mail",endpoint="127.0.0.1:2525+starttls",le="+Inf"} 1)"));
    CHECK(has_line(text, R"(netpool_lease_seconds_sum{pool="mail",endpoint="127.0.0.1:2525+starttls"} 120)"));

    // Every sample carries the endpoint beside the pool (a pool_set's pools differ in both).
    CHECK(has_line(text, R"(netpool_pool_info{pool="mail",endpoint="127.0.0.1:2525+starttls",protocol="smtp"} 1)"));
    // Quote, backslash and newline in a label value are escaped; nothing else is.
    CHECK(has_line(text, R"(netpool_waiters{pool="we\"ird\\na\nme",endpoint="127.0.0.1:2525+starttls"} 4)"));

    // Every sample belongs to a family announced by HELP and TYPE before it, each
    // family is announced once, and counters end in _total.
    std::set<std::string> typed, helped;
    for (const auto& l : lines_of(text)) {
        CAPTURE(l);
        if (l.starts_with("# HELP ")) {
            CHECK(helped.insert(l.substr(7, l.find(' ', 7) - 7)).second);
        } else if (l.starts_with("# TYPE ")) {
            const auto name = l.substr(7, l.find(' ', 7) - 7);
            const auto type = l.substr(l.rfind(' ') + 1);
            CHECK(typed.insert(name).second);
            CHECK(helped.contains(name));
            if (type == "counter") CHECK(name.ends_with("_total"));
        } else {
            REQUIRE(!l.empty());
            CHECK(l[0] != '#');
            auto metric = l.substr(0, l.find('{'));
            for (const char* suffix : {"_bucket", "_sum", "_count"}) {
                if (metric.ends_with(suffix) && !typed.contains(metric)) {
                    metric.resize(metric.size() - std::string_view(suffix).size());
                    break;
                }
            }
            CHECK(typed.contains(metric));
        }
    }
}

TEST_CASE("Prometheus text passes promtool") {
    if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
        // scripts/test installs it (Debian's prometheus package): in CI a missing promtool is
        // a failure, not a skip; a developer's quick run without it is told so.
        const char* ci = std::getenv("CI");
        if (ci && *ci) FAIL("promtool is not installed: scripts/setup should have installed prometheus");
        MESSAGE("promtool is not installed: the exposition was NOT checked by promtool "
                "(apt-get install prometheus provides it)");
        return;
    }
    auto check = [](const std::string& text) {
        char path[] = "/tmp/netpool_metrics_XXXXXX";
        const int fd = ::mkstemp(path);
        REQUIRE(fd >= 0);
        ::close(fd);
        const std::string metrics = path;
        const std::string report = metrics + ".out";
        std::ofstream(metrics) << text;
        const int rc = std::system(("promtool check metrics < '" + metrics + "' > '" + report + "' 2>&1").c_str());
        const std::string output = read_all(report);
        std::remove(metrics.c_str());
        std::remove(report.c_str());
        INFO("promtool said: " << output);
        CHECK(rc == 0);
    };
    check(netpool::to_prometheus({sample_stats("mail"), sample_stats("we\"ird\\na\nme")}));
    check(netpool::to_prometheus({pool_stats{}}));
}

}  // TEST_SUITE
