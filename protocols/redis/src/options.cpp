// client_options::validate and the "redis" entry of the adapter registry: configuration, not
// protocol, kept apart from the adapter.
#include <netpool/redis/adapter.hpp>

#include <netpool/options.hpp>

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
        for (const auto& [key, value] : params) {
            if (key == "user") o.cred.user = value;
            else if (key == "password_env") o.cred.secret = param_secret_from_env(key, value);
            else if (key == "db") o.db = static_cast<unsigned>(param_count(key, value, 0xFFFFFFFFu));
            else if (key == "command_timeout_ms") o.command_timeout = milliseconds(param_count(key, value, 1u << 31));
            else if (key == "resp3") o.resp3 = param_bool(key, value);
            else
                throw config_error(key, "unknown parameter of the redis adapter (known: user, password_env, db, "
                                        "resp3, command_timeout_ms)");
        }
        return adapter(std::move(o));
    });
}

}  // namespace netpool::redis
