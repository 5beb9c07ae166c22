// Protocols chosen by name at run time (config files, CLI flags).
#include <netpool/adapter.hpp>

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

}  // namespace netpool
