#pragma once
// A password file readable by others is a password others can read: warn, as ssh does for
// its keys and libpq for ~/.pgpass (issue 13, item 5). The file is still used.

#include <sys/stat.h>

#include <cstdio>

#include <string>

namespace netpool::cli {

/// A warning (one line, no newline) when `path` is readable by its group or by others, else
/// "". `command` names the command in the message ("netpool imap-fetch").
inline std::string password_file_warning(const std::string& command, const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {};
    if ((st.st_mode & (S_IRGRP | S_IROTH)) == 0) return {};
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return command + ": warning: --password-file '" + path + "' is readable by " +
           ((st.st_mode & S_IROTH) ? "others" : "its group") + " (mode " + mode +
           "); anyone who can read it has the password: chmod 600 '" + path + "'";
}

}  // namespace netpool::cli
