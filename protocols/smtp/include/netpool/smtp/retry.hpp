// mailer::send's retries as pure logic (no I/O, no clock, no Asio): which attempt results are
// safe to try again and for which recipients, how results fold together, and the delays.
// The policy is retry_policy (types.hpp); docs/smtp.md#retries says what it guarantees.
#pragma once

#include <netpool/smtp/types.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace netpool::smtp {

/// What to do after an attempt.
enum class retry_step {
    done,              ///< report result()
    again,             ///< another transaction, to next_envelope(), after retry_delay()
    wait_for_endpoint, ///< the pool is endpoint down: check out again after a delay; not an attempt
};

/// One message's attempts. Thread safety: none (one send owns it).
class send_tracker {
public:
    send_tracker(envelope e, retry_policy p);

    /// The envelope of the next attempt: the recipients still owed the message.
    const envelope& next_envelope() const noexcept { return next_; }
    /// Folds in one attempt's result (its recipients are those of next_envelope()).
    retry_step record(send_result r);
    /// Transactions tried so far (checkouts that found the endpoint down do not count).
    unsigned attempts() const noexcept { return attempts_; }
    /// The outcome to report: every recipient's last word in the envelope's order; sent if
    /// any attempt was accepted; errc::outcome_unknown if any attempt's outcome was unknown
    /// and was not tried again.
    send_result result() const;

private:
    retry_step again_for(std::vector<std::string> recipients);

    envelope original_;
    retry_policy policy_;
    envelope next_;
    std::vector<recipient_result> by_recipient_;  // parallel to original_.rcpt_to
    send_result last_;
    unsigned attempts_ = 0;
    bool sent_ = false;
    bool unknown_ = false;
};

/// The delay before attempt `attempt` (2 for the first retry): backoff_initial doubling up
/// to backoff_max, less up to backoff_jitter of it drawn from `u` in [0, 1).
std::chrono::milliseconds retry_delay(const retry_policy& p, unsigned attempt, double u) noexcept;

/// True for a failed checkout whose cause may pass while the caller waits (endpoint down
/// after refused or timed-out connects, an unresolvable name): false for a refused login,
/// a certificate that failed verification, a closed pool, a cancelled wait.
bool endpoint_may_return(const send_result& checkout_failure) noexcept;

}  // namespace netpool::smtp
