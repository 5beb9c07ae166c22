// Supervision of one endpoint: see supervisor.hpp.
#include <netpool/detail/supervisor.hpp>

#include <netpool/error.hpp>

#include <algorithm>

namespace netpool::detail {

supervisor::supervisor(const pool_options& o, jitter_rng& rng) noexcept
    : rng_(rng), capacity_(o.size + o.max_overflow), max_restarts_(o.max_restarts), restart_period_(o.restart_period),
      backoff_initial_(o.backoff_initial), backoff_max_(o.backoff_max), down_cooldown_(o.down_cooldown),
      backoff_jitter_(o.backoff_jitter) {}

void supervisor::start_episode(time_point now) noexcept {
    if (!recovering_) {
        recovering_ = true;
        episode_start_ = now;
    }
    allowed_ = 1;
}

bool supervisor::connected() noexcept {
    first_ = false;
    next_attempt_at_ = time_point::min();  // the endpoint answers: nobody waits for a backoff
    if (recovering_) allowed_ = allowed_ > capacity_ ? allowed_ : allowed_ * 2;
    if (!down_) return false;
    down_ = false;
    failures_.clear();
    return true;
}

void supervisor::settle(bool anyone_parked) noexcept {
    if (recovering_ && !anyone_parked) {  // nobody left at the gate: the episode is over
        recovering_ = false;
        allowed_ = static_cast<std::size_t>(-1);
    }
}

bool supervisor::connect_failed(std::uint64_t gen, std::error_code ec, time_point now) {
    last_cause_ = ec;
    if (gen != gen_) return false;  // another failure of its generation already counted
    ++gen_;
    in_flight_ = 0;
    start_episode(now);
    failures_.push_back(now);
    while (!failures_.empty() && now - failures_.front() >= restart_period_) failures_.pop_front();
    const bool first = first_;
    first_ = false;
    // A certificate that does not verify will not verify on the next attempt either: down at
    // once, and probed no faster than down_cooldown. Refused credentials are final: down at
    // once and never probed, because servers lock accounts after a few failed logins. (A
    // token an adapter can refresh is not a refusal of credentials: see smtp's XOAUTH2.)
    // A TLS mode that does not match the port's is as final as a certificate: the server
    // answered our TLS in clear text, or (on the endpoint's first attempt, when it has never
    // greeted us) said nothing at all, as a port that expects TLS at once does.
    const bool certificate = ec == errc::tls_verify_failed || ec == errc::tls_not_offered ||
                             (first && ec == errc::no_greeting);
    const bool refused = ec == condition::credentials_rejected;
    const bool went_down = !down_ && (certificate || refused || failures_.size() > max_restarts_);
    if (went_down) down_ = true;
    if (refused) refused_ = true;
    next_attempt_at_ = refused_ ? never : certificate ? later(now, down_cooldown_) : now + retry_delay(now);
    return went_down;
}

void supervisor::note_break(time_point now) noexcept {
    if (last_break_ != time_point{} && now - last_break_ < backoff_initial_) start_episode(now);
    last_break_ = now;
}

supervisor::admission supervisor::may_admit(time_point now) const noexcept {
    if (now < next_attempt_at_) return {false, next_attempt_at_};
    // The endpoint's first connect goes alone: if the server refuses the login, it refuses
    // one, not one per worker started together.
    if (first_ && in_flight_ > 0) return {false, never};
    if (in_flight_ >= allowed_) {
        // Attempts in flight report first; but one that hangs (a server that accepts and
        // never answers: it reports only at connect_timeout or handshake_timeout) must not
        // hold the gate: while recovering, one more is admitted per backoff step.
        if (!recovering_) return {false, never};
        if (now < stalled_at_) return {false, stalled_at_};
    }
    return {true, never};
}

void supervisor::admitted(time_point now) {
    if (recovering_) stalled_at_ = now + retry_delay(now);
}

supervisor::admission supervisor::may_probe(time_point now) const noexcept {
    if (!down_) return {false, never};
    if (now < next_attempt_at_) return {false, next_attempt_at_};
    return {true, never};
}

clock::duration supervisor::retry_delay(time_point now) {
    // A quarter of the episode's age would let a 2 s outage end up to 0.5 s before service
    // resumes; an eighth keeps that to about 0.25 s while the attempts stay few (about 30
    // in the first 10 s, then at most one per backoff_max, or per down_cooldown while down).
    using ms = std::chrono::duration<double, std::milli>;
    const double age = ms(now - episode_start_).count();
    double cap = static_cast<double>(backoff_max_.count());
    if (down_) cap = std::min(cap, static_cast<double>(down_cooldown_.count()));
    const double lo = std::min(static_cast<double>(backoff_initial_.count()), cap);
    const double base = std::clamp(age / 8.0, lo, cap);
    const double d = base * (1.0 - backoff_jitter_ * rng_.next01());
    return std::chrono::duration_cast<clock::duration>(ms(d));
}

}  // namespace netpool::detail
