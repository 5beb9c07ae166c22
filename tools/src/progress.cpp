#include <netpool/tools/progress.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace netpool::tools {

bool progress_wanted(bool asked) {
    if (asked) return true;
    const char* env = std::getenv("NETPOOL_PROGRESS");
    if (env && std::string_view(env) == "1") return true;
    if (env && std::string_view(env) == "0") return false;
    return ::isatty(STDERR_FILENO) != 0;
}

progress::progress(std::string label, std::size_t total, bool enabled, std::chrono::milliseconds quiet_for)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      terminal_(::isatty(STDERR_FILENO) != 0),
      quiet_for_(quiet_for),
      start_(clock_type::now()),
      last_(start_) {}

progress::~progress() { finish(); }

void progress::update(std::size_t done, std::size_t failed) {
    done_ = done;
    failed_ = failed;
    if (!enabled_) return;
    const auto now = clock_type::now();
    if (now - start_ < quiet_for_) return;
    if (shown_ && now - last_ < (terminal_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(1000))) return;
    last_ = now;
    shown_ = true;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double pct = total_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 0;
    std::fprintf(stderr, "%s%s: %zu/%zu (%.0f%%), %zu failed, %.0f/s, %.0f s%s", terminal_ ? "\r\033[K" : "",
                 label_.c_str(), done, total_, pct, failed, secs > 0 ? static_cast<double>(done) / secs : 0.0, secs,
                 terminal_ ? "" : "\n");
    std::fflush(stderr);
}

void progress::finish() {
    if (!enabled_ || !shown_) return;
    shown_ = false;
    if (terminal_) {
        std::fputs("\r\033[K", stderr);
    } else {
        std::fprintf(stderr, "%s: %zu/%zu done, %zu failed\n", label_.c_str(), done_, total_, failed_);
    }
    std::fflush(stderr);
}

}  // namespace netpool::tools
