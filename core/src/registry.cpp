// The pool manager and its global connection budget.
#include <netpool/registry.hpp>
#include <netpool/detail/pool_impl.hpp>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace netpool {

void registry_options::validate() const {
    if (retire_idle_after.count() < 0) throw config_error("retire_idle_after", "must not be negative");
}

namespace detail {

/// The global cap as permits. A pool asks for one per connection it opens and gives it
/// back when the connection is gone. Fairness: when permits are short, a pool below its
/// share (cap / pools that hold or want permits) goes first, and a pool above its share
/// gives back a connection as soon as one of its connections would go idle (should_yield),
/// and is asked to shed an idle one now. Entries are keyed by the pool's address and
/// removed when the pool goes away (detach), so a new pool at the same address never
/// inherits a stale entry.
class global_budget final : public permit_source {
public:
    global_budget(std::size_t cap, asio::any_io_executor ex) : cap_(cap), ex_(std::move(ex)) {}

    void attach(void* key, std::weak_ptr<pool_impl> p) {
        std::lock_guard lk(mu_);
        entries_[key].pool = std::move(p);
    }

    /// The pool is being destroyed: its permits are back (pool_state's destructor) and it
    /// wants nothing.
    void detach(void* key) override {
        std::lock_guard lk(mu_);
        auto it = entries_.find(key);
        if (it == entries_.end()) return;
        if (it->second.held == 0) entries_.erase(it);
        else it->second.wanting = false;
    }

    bool try_acquire(void* key) override {
        std::lock_guard lk(mu_);
        entry& e = entries_[key];
        const std::size_t share = fair_share(key);
        if (used_ < cap_) {
            const bool others_starving = std::any_of(entries_.begin(), entries_.end(), [&](const auto& kv) {
                return kv.first != key && kv.second.wanting && kv.second.held < share;
            });
            if (!others_starving || e.held < share) {
                ++used_;
                ++e.held;
                e.wanting = false;
                return true;
            }
        }
        e.wanting = true;
        if (e.held < share) ask_someone_to_shed(key, share);
        return false;
    }

    void release(void* key) override {
        std::lock_guard lk(mu_);
        auto it = entries_.find(key);
        if (it != entries_.end() && it->second.held > 0) --it->second.held;
        if (used_ > 0) --used_;
        // Every pool that wants a permit is told; try_acquire() decides who gets it fairly,
        // and a pool that no longer needs one simply does not ask.
        for (auto& [k, e] : entries_) {
            if (!e.wanting) continue;
            e.wanting = false;
            notify(e.pool);
        }
        if (it != entries_.end() && it->second.held == 0 && it->second.pool.expired()) entries_.erase(it);
    }

    bool should_yield(void* key) override {
        std::lock_guard lk(mu_);
        auto it = entries_.find(key);
        if (it == entries_.end()) return false;
        const std::size_t share = fair_share(key);
        if (it->second.held <= share) return false;
        return std::any_of(entries_.begin(), entries_.end(), [&](const auto& kv) {
            return kv.first != key && kv.second.wanting && kv.second.held < share;
        });
    }

    std::size_t used() const {
        std::lock_guard lk(mu_);
        return used_;
    }

private:
    struct entry {
        std::weak_ptr<pool_impl> pool;
        std::size_t held = 0;
        bool wanting = false;
    };

    std::size_t fair_share(void* key) const {
        std::size_t active = 0;
        for (const auto& [k, e] : entries_)
            if (k == key || e.held > 0 || e.wanting) ++active;
        return std::max<std::size_t>(1, cap_ / std::max<std::size_t>(1, active));
    }

    void ask_someone_to_shed(void* key, std::size_t share) {
        const entry* victim = nullptr;
        for (const auto& [k, e] : entries_)
            if (k != key && e.held > share && (!victim || e.held > victim->held)) victim = &e;
        if (!victim) return;
        // Posted: we may be inside the requesting pool's lock, and shedding takes the
        // victim's lock. If the victim has nothing idle now, should_yield() catches its next
        // connection on its way to idle.
        asio::post(ex_, [w = victim->pool] {
            if (auto p = w.lock()) p->shed_idle();
        });
    }

    void notify(const std::weak_ptr<pool_impl>& w) {
        asio::post(ex_, [w] {
            if (auto p = w.lock()) p->permit_available();
        });
    }

    mutable std::mutex mu_;
    std::size_t cap_;
    std::size_t used_ = 0;
    asio::any_io_executor ex_;
    std::unordered_map<void*, entry> entries_;
};

class registry_impl : public std::enable_shared_from_this<registry_impl> {
public:
    registry_impl(asio::any_io_executor ex, registry_options o)
        : ex_(std::move(ex)), opts_(o), timer_(ex_) {
        opts_.validate();
        if (opts_.global_cap > 0) budget_ = std::make_shared<global_budget>(opts_.global_cap, ex_);
    }

    ~registry_impl() {
        for (auto& [name, e] : named_) e.p->close();
        for (auto& [key, e] : keyed_) e.p->close();
    }

    void start_sweeper() {
        if (opts_.retire_idle_after.count() <= 0) return;
        if (opts_.clock && !opts_.clock->real_time()) {
            // Time moves when the clock is moved: sweep then, not on a real timer.
            clock_sub_ = opts_.clock->subscribe([w = weak_from_this()] {
                if (auto self = w.lock()) self->retire_idle();
            });
            return;
        }
        timer_.expires_after(std::max(opts_.retire_idle_after / 2, std::chrono::milliseconds(10)));
        timer_.async_wait([w = weak_from_this()](std::error_code ec) {
            if (ec) return;
            if (auto self = w.lock()) {
                self->retire_idle();
                self->start_sweeper();
            }
        });
    }

    std::shared_ptr<pool> make_pool(endpoint ep, any_adapter a, pool_options o, std::string name) {
        if (!o.clock) o.clock = opts_.clock;
        auto impl = std::make_shared<pool_impl>(ex_, std::move(ep), std::move(a), std::move(o), std::move(name));
        if (budget_) {
            budget_->attach(impl.get(), impl);
            impl->set_permit_source(budget_);
        }
        return std::shared_ptr<pool>(new pool(std::move(impl)));
    }

    pool& start_pool(std::string name, endpoint ep, any_adapter a, pool_options o) {
        std::lock_guard lk(mu_);
        if (named_.count(name)) throw std::invalid_argument("registry: a pool named '" + name + "' already exists");
        auto p = make_pool(std::move(ep), std::move(a), std::move(o), name);
        auto& e = named_[std::move(name)];
        e.p = std::move(p);
        return *e.p;
    }

    pool* find(std::string_view name) {
        std::lock_guard lk(mu_);
        auto it = named_.find(name);
        return it == named_.end() ? nullptr : it->second.p.get();
    }

    bool stop_pool(std::string_view name, std::chrono::milliseconds deadline) {
        std::shared_ptr<pool> p;
        {
            std::lock_guard lk(mu_);
            auto it = named_.find(name);
            if (it == named_.end()) return false;
            p = std::move(it->second.p);
            named_.erase(it);
        }
        if (deadline.count() > 0) {
            // The handle lives until the drain ends (destroying it would close at once).
            p->async_drain(deadline, [keep = p](std::error_code) {});
        } else {
            p->close();
        }
        return true;
    }

    std::shared_ptr<pool> pool_for(const endpoint& ep, const credentials& cred, const std::function<any_adapter()>& make,
                                   const pool_options& o) {
        pool_key key = pool_key::make(ep, cred);
        std::lock_guard lk(mu_);
        if (auto it = keyed_.find(key); it != keyed_.end()) {
            it->second.idle_since.reset();  // in use again: not retired by the sweep in progress
            return it->second.p;
        }
        pool_options clamped = o;
        if (opts_.per_key_limit > 0) {
            clamped.size = std::min(clamped.size, opts_.per_key_limit);
            clamped.max_overflow = std::min(clamped.max_overflow, opts_.per_key_limit - clamped.size);
        }
        // The name carries no credential material (it is in metrics and events): the
        // endpoint, a sequence number that tells pools of different identities apart, and the
        // user only if asked for.
        std::string name;
        if (opts_.label_with_user && !key.user.empty()) name = key.user + '@';
        name += key.to_string();
        name += '#';
        name += std::to_string(++keyed_sequence_);
        auto p = make_pool(ep, make(), clamped, std::move(name));
        keyed_[key].p = p;
        return p;
    }

    std::vector<pool_stats> stats() const {
        std::lock_guard lk(mu_);
        std::vector<pool_stats> out;
        out.reserve(named_.size() + keyed_.size());
        for (const auto& [n, e] : named_) out.push_back(e.p->stats());
        for (const auto& [k, e] : keyed_) out.push_back(e.p->stats());
        return out;
    }

    std::size_t permits_in_use() const { return budget_ ? budget_->used() : 0; }

    std::size_t size() const {
        std::lock_guard lk(mu_);
        return named_.size() + keyed_.size();
    }

    std::size_t retire_idle() {
        if (opts_.retire_idle_after.count() <= 0) return 0;
        const auto now = opts_.clock ? opts_.clock->now() : std::chrono::steady_clock::now();
        std::vector<std::shared_ptr<pool>> retired;
        {
            std::lock_guard lk(mu_);
            for (auto it = keyed_.begin(); it != keyed_.end();) {
                const auto s = it->second.p->stats();
                if (s.leased > 0 || s.waiters > 0) {
                    it->second.idle_since.reset();
                } else if (!it->second.idle_since) {
                    it->second.idle_since = now;
                } else if (now - *it->second.idle_since >= opts_.retire_idle_after) {
                    retired.push_back(std::move(it->second.p));
                    it = keyed_.erase(it);
                    continue;
                }
                ++it;
            }
        }
        for (auto& p : retired) p->close();
        return retired.size();
    }

    std::size_t retire_all(std::chrono::milliseconds deadline) {
        std::unordered_map<pool_key, entry> retired;
        {
            std::lock_guard lk(mu_);
            retired.swap(keyed_);
        }
        // Drained like stop_pool(): leases out finish (until the deadline), new checkouts
        // through a handle still held get pool_closed. The handle lives until the drain ends.
        for (auto& [k, e] : retired) e.p->async_drain(deadline, [keep = e.p](std::error_code) {});
        return retired.size();
    }

private:
    struct entry {
        std::shared_ptr<pool> p;
        std::optional<std::chrono::steady_clock::time_point> idle_since;
    };

    asio::any_io_executor ex_;
    registry_options opts_;
    asio::steady_timer timer_;
    std::shared_ptr<void> clock_sub_;  // with a manual clock, instead of timer_
    std::shared_ptr<global_budget> budget_;
    mutable std::mutex mu_;
    std::map<std::string, entry, std::less<>> named_;
    std::unordered_map<pool_key, entry> keyed_;
    std::uint64_t keyed_sequence_ = 0;  // guarded by mu_
};

}  // namespace detail

registry::registry(asio::any_io_executor ex, registry_options options)
    : impl_(std::make_shared<detail::registry_impl>(std::move(ex), options)) {
    impl_->start_sweeper();
}

registry::~registry() = default;

pool& registry::start_pool(std::string name, endpoint ep, any_adapter adapter, pool_options options) {
    return impl_->start_pool(std::move(name), std::move(ep), std::move(adapter), std::move(options));
}
pool* registry::find(std::string_view name) { return impl_->find(name); }
bool registry::stop_pool(std::string_view name, std::chrono::milliseconds deadline) {
    return impl_->stop_pool(name, deadline);
}
std::shared_ptr<pool> registry::pool_for(const endpoint& ep, const credentials& cred,
                                         const std::function<any_adapter()>& make_adapter, const pool_options& options) {
    return impl_->pool_for(ep, cred, make_adapter, options);
}
std::vector<pool_stats> registry::stats() const { return impl_->stats(); }
std::size_t registry::permits_in_use() const { return impl_->permits_in_use(); }
std::size_t registry::size() const { return impl_->size(); }
std::size_t registry::retire_idle() { return impl_->retire_idle(); }
std::size_t registry::retire_all(std::chrono::milliseconds deadline) { return impl_->retire_all(deadline); }

}  // namespace netpool
