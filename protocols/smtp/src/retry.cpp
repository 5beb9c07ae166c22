#include <netpool/smtp/retry.hpp>

#include <netpool/error.hpp>
#include <netpool/options.hpp>
#include <netpool/smtp/error.hpp>

#include <algorithm>
#include <cmath>
#include <utility>

namespace netpool::smtp {

void retry_policy::validate() const {
    if (max_attempts < 1) throw config_error("retry.max_attempts", "must be >= 1 (1: no retry)");
    if (backoff_initial.count() <= 0) throw config_error("retry.backoff_initial", "must be > 0");
    if (backoff_max < backoff_initial) throw config_error("retry.backoff_max", "must be >= retry.backoff_initial");
    if (!(backoff_jitter >= 0.0 && backoff_jitter <= 1.0)) throw config_error("retry.backoff_jitter", "must be in [0, 1]");
    if (deadline.count() <= 0) throw config_error("retry.deadline", "must be > 0");
}

namespace {

bool is_transient_reply(int code) noexcept { return code >= 400 && code < 500; }

/// Refused before anything was sent, or refused for good: the same message would be refused
/// again.
bool final_failure(const send_result& r) noexcept {
    if (r.stage == "envelope" || r.stage == "content" || r.stage == "SIZE") return true;
    const std::error_code& ec = r.ec;
    return ec == errc::permanent_failure || ec == errc::message_too_large || ec == errc::no_recipients ||
           ec == errc::invalid_address || ec == errc::line_too_long || ec == errc::unexpected_reply ||
           ec == errc::reply_before_end_of_data || ec == netpool::errc::cancelled;
}

}  // namespace

bool endpoint_may_return(const send_result& r) noexcept {
    const std::error_code& ec = r.ec;
    return ec == netpool::errc::endpoint_down_refused || ec == netpool::errc::endpoint_down_timeout ||
           ec == netpool::errc::endpoint_down_resolve;
}

send_tracker::send_tracker(envelope e, retry_policy p) : original_(std::move(e)), policy_(std::move(p)), next_(original_) {
    by_recipient_.resize(original_.rcpt_to.size());
    for (std::size_t i = 0; i < original_.rcpt_to.size(); ++i) by_recipient_[i].address = original_.rcpt_to[i];
}

retry_step send_tracker::again_for(std::vector<std::string> recipients) {
    if (recipients.empty() || attempts_ >= policy_.max_attempts) return retry_step::done;
    next_.rcpt_to = std::move(recipients);
    return retry_step::again;
}

retry_step send_tracker::record(send_result r) {
    // A checkout that failed is no transaction: nothing reached the server.
    if (r.stage == "checkout") {
        last_ = std::move(r);
        if (last_.ec == netpool::errc::pool_closed || last_.ec == netpool::errc::cancelled) return retry_step::done;
        if (endpoint_may_return(last_)) return retry_step::wait_for_endpoint;
        if (last_.ec == netpool::errc::checkout_timeout || last_.ec == netpool::errc::pool_exhausted) {
            ++attempts_;
            return again_for(next_.rcpt_to);
        }
        return retry_step::done;  // endpoint down for a refused login or a failed certificate
    }
    ++attempts_;
    // Each recipient's word from this attempt replaces what an earlier one said.
    for (const auto& rr : r.recipients)
        for (std::size_t i = 0; i < original_.rcpt_to.size(); ++i)
            if (original_.rcpt_to[i] == rr.address) by_recipient_[i] = rr;
    last_ = std::move(r);

    // Recipients whose RCPT got a 4xx in this attempt: owed a new transaction, alone.
    std::vector<std::string> deferred;
    for (const auto& rr : last_.recipients)
        if (is_transient_reply(rr.code)) deferred.push_back(rr.address);

    if (last_.sent) {
        sent_ = true;
        return again_for(std::move(deferred));
    }
    if (last_.ec == errc::outcome_unknown) {
        if (policy_.retry_unknown_outcome) return again_for(next_.rcpt_to);
        unknown_ = true;
        return retry_step::done;
    }
    if (last_.stage == "RCPT TO" && (last_.ec == errc::transient_failure || last_.ec == errc::permanent_failure))
        return again_for(std::move(deferred));  // no recipient accepted: retry the 4xx ones
    if (final_failure(last_)) return retry_step::done;
    // 421, a 4xx to MAIL, DATA or the final dot, a lost or broken session before the dot
    // went out: nothing was delivered; the whole envelope again.
    return again_for(next_.rcpt_to);
}

send_result send_tracker::result() const {
    send_result out = last_;
    out.attempts = attempts_;
    // Every recipient a server answered, in the envelope's order, with its latest word.
    out.recipients.clear();
    for (const auto& rr : by_recipient_)
        if (rr.code != 0) out.recipients.push_back(rr);
    if (sent_) {
        out.sent = true;
        if (unknown_) {
            out.ec = errc::outcome_unknown;
        } else {
            out.ec.clear();
            out.stage.clear();
        }
    } else if (unknown_) {
        out.ec = errc::outcome_unknown;
    }
    return out;
}

std::chrono::milliseconds retry_delay(const retry_policy& p, unsigned attempt, double u) noexcept {
    using std::chrono::milliseconds;
    double d = static_cast<double>(p.backoff_initial.count());
    for (unsigned i = 2; i < attempt && d < static_cast<double>(p.backoff_max.count()); ++i) d *= 2;
    d = std::min(d, static_cast<double>(p.backoff_max.count()));
    u = std::clamp(u, 0.0, 1.0);
    d -= d * p.backoff_jitter * u;
    return milliseconds(static_cast<milliseconds::rep>(std::max(1.0, std::floor(d))));
}

}  // namespace netpool::smtp
