// A throwaway CA and server certificate for loopback servers (netpool demo, the benchmarks).
#pragma once

#include <string>

namespace netpool::tools {

/// A CA and a server certificate for 127.0.0.1/localhost (EC P-256, valid one day), made
/// with the openssl command in a fresh temporary directory that the destructor removes.
/// `label` names the CA ("netpool demo CA") and the directory (/tmp/<label>-XXXXXX, spaces
/// as dashes). Errors: throws std::runtime_error naming the log file when openssl fails.
class throwaway_pki {
public:
    explicit throwaway_pki(const std::string& label);
    ~throwaway_pki();
    throwaway_pki(const throwaway_pki&) = delete;
    throwaway_pki& operator=(const throwaway_pki&) = delete;

    std::string ca, cert, key;  ///< PEM files

private:
    std::string dir_;
};

}  // namespace netpool::tools
