// Supervision of one endpoint: the connect gate, restart backoff, restart intensity,
// endpoint down and its probes. Owns that state and nothing else; no I/O, no nodes: pool_state
// tells it what happened to connect attempts and asks whether the next one may start.
//
// Normally every worker that wants to connect does so at once. After a failure (or
// connections breaking together) an episode of recovery starts: one attempt at a time, the
// next one no earlier than a backoff delay with jitter that grows with the episode's age,
// and each success doubles how many may run at once (slow start) until nobody waits at the
// gate. A failure "counts" (for restart intensity, the backoff and the ramp) only if no
// other failure was counted since its attempt began (its generation), so connections that
// fail together are one failure, as OTP counts a child's restarts and not its siblings'.
// More than max_restarts counted failures within restart_period, or one certificate that
// does not verify, take the endpoint down: checkouts fail fast, and one probe at a time runs
// no more often than down_cooldown until a connect succeeds. Refused credentials
// (condition::credentials_rejected) take it down for good: no probe repeats the login. The
// endpoint's first connect runs alone, so a refused login is refused once.
#pragma once

#include <netpool/detail/jitter.hpp>
#include <netpool/options.hpp>
#include <netpool/time.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <system_error>

namespace netpool::detail {

class supervisor {
public:
    /// `o` validated and saturated; `rng` outlives the supervisor.
    supervisor(const pool_options& o, jitter_rng& rng) noexcept;

    /// A connect attempt starts: its generation, to give back to attempt_ended and
    /// connect_failed.
    std::uint64_t attempt_started() noexcept {
        ++in_flight_;
        return gen_;
    }
    /// The attempt of generation `gen` reported (success or failure).
    void attempt_ended(std::uint64_t gen) noexcept {
        if (gen == gen_ && in_flight_ > 0) --in_flight_;
    }

    /// A connect succeeded: no backoff any more, the ramp doubles. True if the endpoint was
    /// down (it is up now, its failure history cleared).
    bool connected() noexcept;
    /// After a success has been handed on: the episode ends when nobody waits at the gate.
    void settle(bool anyone_parked) noexcept;

    /// The last connect failure's cause (even one that did not count).
    void note_cause(std::error_code ec) noexcept { last_cause_ = ec; }
    /// A connect of generation `gen` failed with `ec`. True if the endpoint went down now.
    bool connect_failed(std::uint64_t gen, std::error_code ec, time_point now);
    /// A connection was found broken (closed by a failed exchange, check or lease deadline):
    /// two within backoff_initial of each other start an episode, one attempt at a time.
    void note_break(time_point now) noexcept;

    /// May the oldest worker at the gate connect now? If not, `ask_again` is when to ask
    /// again (never: when an attempt in flight reports).
    struct admission {
        bool admit = false;
        time_point ask_again = never;
    };
    admission may_admit(time_point now) const noexcept;
    /// The worker asked about was admitted.
    void admitted(time_point now);
    /// Down with no attempt running: may a probe start now? (ask_again as above.)
    admission may_probe(time_point now) const noexcept;

    bool down() const noexcept { return down_; }
    /// The server refused the credentials: down, and never probed.
    bool credentials_refused() const noexcept { return refused_; }
    bool recovering() const noexcept { return recovering_; }
    std::error_code last_cause() const noexcept { return last_cause_; }
    std::size_t counted_failures() const noexcept { return failures_.size(); }
    /// The backoff before the next attempt (exposed for tests of its bounds).
    clock::duration retry_delay(time_point now);

private:
    void start_episode(time_point now) noexcept;

    jitter_rng& rng_;
    std::size_t capacity_;
    std::size_t max_restarts_;
    duration restart_period_, backoff_initial_, backoff_max_, down_cooldown_;
    double backoff_jitter_;

    std::deque<time_point> failures_;  // counted failures within restart_period
    std::error_code last_cause_;
    bool down_ = false;
    bool recovering_ = false;
    time_point episode_start_{};
    time_point next_attempt_at_ = time_point::min();
    time_point stalled_at_ = time_point::min();  // while recovering: when an unanswered attempt stops holding the gate
    std::size_t allowed_ = static_cast<std::size_t>(-1);  // attempts of the current generation at once
    std::uint64_t gen_ = 1;
    std::size_t in_flight_ = 0;  // attempts started in generation gen_, not yet reported
    time_point last_break_{};    // last close of a connection found broken
    bool first_ = true;          // no connect has reported yet: one attempt at a time
    bool refused_ = false;       // the server refused the credentials: no attempt ever again
};

}  // namespace netpool::detail
