// client_options::validate and the "redis" entry of the adapter registry: configuration, not
// protocol, kept apart from the adapter.
#include <netpool/redis/adapter.hpp>

#include <netpool/options.hpp>

#include <cerrno>
#include <cstdlib>

namespace netpool::redis {

using std::chrono::milliseconds;

void client_options::validate() const {
    if (command_timeout <= milliseconds::zero()) throw config_error("command_timeout", "must be > 0");
    if (!cred.user.empty() && cred.secret.empty()) throw config_error("cred.secret", "a user needs a password");
    const std::pair<const char*, std::size_t> bounds[] = {{"limits.max_line", limits.max_line},
                                                          {"limits.max_bulk", limits.max_bulk},
                                                          {"limits.max_elements", limits.max_elements},
                                                          {"limits.max_depth", limits.max_depth},
                                                          {"limits.max_reply", limits.max_reply}};
    for (const auto& [field, value] : bounds)
        if (value == 0) throw config_error(field, "must be > 0");
}

void register_redis_adapter(adapter_registry& registry) {
    registry.add("redis", [](const adapter_params& params) -> any_adapter {
        client_options o;
        const auto count = [](const std::string& key, const std::string& value) {
            char* end = nullptr;
            errno = 0;
            const unsigned long long v = std::strtoull(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0' || errno != 0 || value[0] == '-' || v > 0xFFFFFFFFull)
                throw config_error(key, "expects a non-negative integer, got '" + value + "'");
            return static_cast<unsigned>(v);
        };
        for (const auto& [key, value] : params) {
            if (key == "user") o.cred.user = value;
            else if (key == "password_env") {
                // The variable's name travels in the parameters, its value never does.
                const char* secret = std::getenv(value.c_str());
                if (secret == nullptr) throw config_error(key, "environment variable '" + value + "' is not set");
                o.cred.secret = secret;
            } else if (key == "db") o.db = count(key, value);
            else if (key == "command_timeout_ms") o.command_timeout = milliseconds(count(key, value));
            else if (key == "resp3" && (value == "true" || value == "false")) o.resp3 = value == "true";
            else if (key == "resp3") throw config_error(key, "expects true or false, got '" + value + "'");
            else
                throw config_error(key, "unknown parameter of the redis adapter (known: user, password_env, db, "
                                        "resp3, command_timeout_ms)");
        }
        return adapter(std::move(o));
    });
}

}  // namespace netpool::redis
