#include <netpool/tools/pki.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace netpool::tools {

throwaway_pki::throwaway_pki(const std::string& label) {
    std::string stem = label;
    std::replace(stem.begin(), stem.end(), ' ', '-');
    std::string tmpl = (std::filesystem::temp_directory_path() / (stem + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary directory for " + label);
    dir_ = tmpl;
    const std::filesystem::path dir(dir_);
    ca = (dir / "ca.pem").string();
    cert = (dir / "server.pem").string();
    key = (dir / "server.key").string();
    const std::string script =
        "set -e; cd '" + dir_ + "'; "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
        "-subj '/CN=" + label + " CA' -keyout ca.key -out ca.pem; "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=localhost' "
        "-keyout server.key -out server.csr; "
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext; "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 "
        "-extfile san.ext -out server.pem";
    const std::string cmd = "sh -c \"" + script + "\" > '" + dir_ + "/openssl.log' 2>&1";
    if (std::system(cmd.c_str()) != 0) {
        // The log stays for the reader; the rest of the directory is of no use.
        std::error_code ignored;
        for (const char* f : {"ca.key", "ca.pem", "server.key", "server.csr", "server.pem", "san.ext"})
            std::filesystem::remove(dir / f, ignored);
        throw std::runtime_error("could not make a test certificate with the openssl command (see " + dir_ +
                                 "/openssl.log); is openssl installed?");
    }
}

throwaway_pki::~throwaway_pki() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

}  // namespace netpool::tools
