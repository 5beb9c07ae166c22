// Protocols chosen by name at run time (config files, CLI flags).
#include <netpool/adapter.hpp>

#include <netpool/options.hpp>  // config_error

#include <charconv>
#include <cstdlib>
#include <stdexcept>

namespace netpool {

// No mutex: the contract is add() before concurrent use, and concurrent const reads of a
// std::map are safe, so make() and names() need no lock.
void adapter_registry::add(std::string name, adapter_factory factory) {
    if (name.empty()) throw std::invalid_argument("adapter_registry::add: protocol name is empty");
    if (!factory) throw std::invalid_argument("adapter_registry::add: factory for protocol '" + name + "' is empty");
    if (factories_.contains(name))
        throw std::invalid_argument("adapter_registry::add: protocol '" + name + "' is already registered");
    factories_.emplace(std::move(name), std::move(factory));
}

any_adapter adapter_registry::make(std::string_view name, const adapter_params& params) const {
    const auto it = factories_.find(name);
    if (it == factories_.end()) {
        std::string known;
        for (const auto& [n, f] : factories_) {
            if (!known.empty()) known += ", ";
            known += n;
        }
        throw std::invalid_argument("unknown protocol '" + std::string(name) + "' (known: " +
                                    (known.empty() ? std::string("none") : known) + ")");
    }
    any_adapter a = it->second(params);
    // A factory that returns nothing is a bug in the protocol library; catching it here
    // names the protocol instead of crashing later inside a worker.
    if (!a) throw std::logic_error("adapter factory for protocol '" + it->first + "' returned an empty adapter");
    return a;
}

std::vector<std::string> adapter_registry::names() const {
    std::vector<std::string> out;
    out.reserve(factories_.size());
    for (const auto& [n, f] : factories_) out.push_back(n);
    return out;
}

bool adapter_registry::contains(std::string_view name) const { return factories_.find(name) != factories_.end(); }

adapter_registry& adapter_registry::global() {
    // Function-local static: initialised on first use, thread-safe, and usable from other
    // libraries' static initialisers without order-of-initialisation trouble.
    static adapter_registry instance;
    return instance;
}

bool param_bool(std::string_view key, std::string_view value) {
    if (value == "true" || value == "1" || value == "yes") return true;
    if (value == "false" || value == "0" || value == "no") return false;
    throw config_error(std::string(key), "expected true or false, got '" + std::string(value) + "'");
}

std::uint64_t param_count(std::string_view key, std::string_view value, std::uint64_t max) {
    std::uint64_t n = 0;
    const char* end = value.data() + value.size();
    const auto [p, err] = std::from_chars(value.data(), end, n);
    if (value.empty() || err != std::errc{} || p != end || n > max)
        throw config_error(std::string(key), "expected a number from 0 to " + std::to_string(max) + ", got '" +
                                                 std::string(value) + "'");
    return n;
}

std::string param_secret_from_env(std::string_view key, std::string_view variable) {
    const std::string name(variable);
    const char* secret = name.empty() ? nullptr : std::getenv(name.c_str());
    if (secret == nullptr) throw config_error(std::string(key), "environment variable '" + name + "' is not set");
    return secret;
}

}  // namespace netpool
