// The "netpool.redis" error category.
#include <netpool/redis/error.hpp>

#include <netpool/error.hpp>

#include <string>

namespace netpool::redis {
namespace {

class category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "netpool.redis"; }

    std::string message(int v) const override {
        switch (static_cast<errc>(v)) {
        case errc::server_error: return "Redis error reply to the command";
        case errc::auth_failed: return "Redis AUTH failed: the server rejected the credentials";
        case errc::select_failed: return "Redis SELECT of the configured database failed";
        case errc::hello_failed: return "Redis HELLO 3 failed: the server does not speak RESP3";
        }
        return "unknown netpool.redis error " + std::to_string(v);
    }

    std::error_condition default_error_condition(int v) const noexcept override {
        if (v != static_cast<int>(errc::server_error) && v >= 1 && v <= static_cast<int>(errc::hello_failed))
            return netpool::make_error_condition(netpool::condition::handshake_rejected);
        return {v, *this};
    }

    bool equivalent(int v, const std::error_condition& c) const noexcept override {
        if (c == netpool::make_error_condition(netpool::condition::credentials_rejected))
            return v == static_cast<int>(errc::auth_failed);
        return default_error_condition(v) == c;
    }
};

}  // namespace

const std::error_category& redis_category() noexcept {
    static const category_impl instance;
    return instance;
}

}  // namespace netpool::redis
