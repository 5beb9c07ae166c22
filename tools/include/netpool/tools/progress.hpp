// A progress line on stderr for runs longer than a few seconds, so that a person at a
// terminal sees a long run move. stdout (and the JSON a script reads there) is never touched.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace netpool::tools {

/// Whether to show progress: when `asked` (--progress), or when stderr is a terminal and the
/// environment does not say NETPOOL_PROGRESS=0. NETPOOL_PROGRESS=1 asks too (for the
/// benchmark binaries, which take no options of ours).
bool progress_wanted(bool asked = false);

/// "<label>: 1200/5000 (24%), 3 failed, 410/s, 3 s" on stderr, first after `quiet_for` (a run
/// that ends sooner prints nothing), then at most every 250 ms. On a terminal the line is
/// rewritten in place and cleared by finish(); elsewhere (asked for, e.g. into a log) a line
/// a second. Thread safety: none; call from the thread running the load.
class progress {
public:
    progress(std::string label, std::size_t total, bool enabled,
             std::chrono::milliseconds quiet_for = std::chrono::seconds(2));
    ~progress();
    progress(const progress&) = delete;
    progress& operator=(const progress&) = delete;

    /// `done` operations so far, `failed` of them failed.
    void update(std::size_t done, std::size_t failed);
    /// Clears the line (terminal) or prints the last count (elsewhere), if anything was shown.
    void finish();

private:
    using clock_type = std::chrono::steady_clock;
    std::string label_;
    std::size_t total_;
    bool enabled_, terminal_;
    bool shown_ = false;
    std::chrono::milliseconds quiet_for_;
    clock_type::time_point start_, last_;
    std::size_t done_ = 0, failed_ = 0;
};

}  // namespace netpool::tools
