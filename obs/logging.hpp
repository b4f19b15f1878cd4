#pragma once
// Logging set-up (text, or one JSON object per line) and the access log record.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/settings.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

// A logger writing to stderr (or --log-file) in the configured format and level. In json
// format every line, whatever code logs it, is {"ts":…,"level":…,"msg":…}; a message that
// starts with "[REQUEST_ID] " gets a "request_id" member. Throws config::config_error when
// the log file cannot be opened.
std::shared_ptr<spdlog::logger> make_logger(const config::settings& s,
                                            const std::string& name = "fusproxy");

// Reopens the logger's --log-file (SIGHUP, after rotation). False if it logs to stderr.
bool reopen_log_files(spdlog::logger& log);

struct access_record {
  std::string_view request_id;
  std::string_view client_ip;
  std::string_view method;
  std::string_view target;
  std::string_view route;  // route_label, or "-" when no route matched
  unsigned status = 0;
  std::uint64_t bytes = 0;  // body bytes written
  double duration_ms = 0;
  std::string_view user_agent;
  bool cut = false;  // the connection was ended before the body was complete
};

// One access log line: text "access …" or, in json format, the record's fields as members.
void log_access(spdlog::logger& log, config::log_format format, const access_record& r);

// Escapes a string as a JSON string literal (with quotes).
std::string json_quote(std::string_view s);

}  // namespace fusproxy::server
