// A load run as the load commands print it in JSON (imap-bench, redis-bench, smtp-send): the
// keys scripts read (bench/run.py, tests/cli) are written here once.
#pragma once

#include <netpool/tools/load.hpp>
#include <netpool/tools/report.hpp>

#include <string>

namespace netpool::tools {

/// [{"reason", "count"}] of r's failures, the most frequent first.
inline json failures_json(const load_result& r) {
    json out = json::array();
    for (const auto& [why, n] : r.failures_by_count()) out.push_back({{"reason", why}, {"count", n}});
    return out;
}

/// Appends to `run`, in this order: "success", "failures", "avg_ms", "median_ms", "p95_ms"
/// (rounded to `decimals`), `rate_key` (successes per second, one decimal), "seconds" and
/// "failure_reasons".
inline void add_run_summary(json& run, load_result& r, const std::string& rate_key, int decimals) {
    run["success"] = r.ok;
    run["failures"] = r.failed;
    run["avg_ms"] = rounded(r.lat.average() / 1e3, decimals);
    run["median_ms"] = rounded(r.lat.percentile(0.5) / 1e3, decimals);
    run["p95_ms"] = rounded(r.lat.percentile(0.95) / 1e3, decimals);
    run[rate_key] = rounded(r.per_second(), 1);
    run["seconds"] = rounded(r.seconds, 3);
    run["failure_reasons"] = failures_json(r);
}

}  // namespace netpool::tools
