#include "obs/logging.hpp"

#include <spdlog/details/file_helper.h>
#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>

namespace fusproxy::server {
namespace {

// Messages starting with this byte carry ready-made JSON members ("k":v,…) instead of text:
// the access log uses it to put its fields at the top level of the line's object.
constexpr char members_marker = '\x1e';

// Lines about one request start with "[REQUEST_ID] " (the resolver's and the server's
// convention); in json format the id becomes the line's request_id member.
std::string_view leading_request_id(std::string_view payload) {
  if (payload.size() < 4 || payload.front() != '[') return {};
  const auto end = payload.find("] ");
  if (end == std::string_view::npos || end < 2 || end > 129) return {};
  const auto id = payload.substr(1, end - 1);
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return {};
  }
  return id;
}

// A file sink that SIGHUP can reopen (after logrotate renamed the file).
class reopenable_file_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit reopenable_file_sink(const std::string& path) { file_.open(path, false); }
  void reopen() {
    std::lock_guard lock(mutex_);
    file_.reopen(false);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    file_.write(formatted);
  }
  void flush_() override { file_.flush(); }

 private:
  spdlog::details::file_helper file_;
};

class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    const auto t = system_clock::to_time_t(msg.time);
    const auto ms = duration_cast<milliseconds>(msg.time.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    const auto level = spdlog::level::to_string_view(msg.level);
    std::string line = "{\"ts\":\"";
    line += ts;
    line += "\",\"level\":\"";
    line.append(level.data(), level.size());
    line += "\",";
    if (!payload.empty() && payload.front() == members_marker) {
      line.append(payload.substr(1));
    } else if (const auto rid = leading_request_id(payload); !rid.empty()) {
      line += "\"request_id\":" + json_quote(rid) + ",\"msg\":";
      line += json_quote(payload.substr(rid.size() + 3));
    } else {
      line += "\"msg\":";
      line += json_quote(payload);
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

}  // namespace

std::string json_quote(std::string_view s) {
  return boost::json::serialize(boost::json::string(s));
}

std::shared_ptr<spdlog::logger> make_logger(const config::settings& s, const std::string& name) {
  spdlog::sink_ptr sink;
  if (s.log_file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    try {
      sink = std::make_shared<reopenable_file_sink>(s.log_file);
    } catch (const spdlog::spdlog_ex& e) {
      throw config::config_error("--log-file", e.what());
    }
  }
  auto log = std::make_shared<spdlog::logger>(name, sink);
  if (s.log_format == config::log_format::json)
    log->set_formatter(std::make_unique<json_formatter>());
  else
    log->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  log->set_level(spdlog::level::from_str(s.log_level));
  log->flush_on(spdlog::level::info);
  return log;
}

bool reopen_log_files(spdlog::logger& log) {
  bool any = false;
  for (auto& sink : log.sinks())
    if (auto* f = dynamic_cast<reopenable_file_sink*>(sink.get())) {
      f->reopen();
      any = true;
    }
  return any;
}

void log_access(spdlog::logger& log, config::log_format format, const access_record& r) {
  if (!log.should_log(spdlog::level::info)) return;
  if (format == config::log_format::json) {
    std::string m(1, members_marker);
    m += "\"msg\":\"access\",\"request_id\":" + json_quote(r.request_id);
    m += ",\"client\":" + json_quote(r.client_ip);
    m += ",\"method\":" + json_quote(r.method);
    m += ",\"target\":" + json_quote(r.target);
    m += ",\"route\":" + json_quote(r.route);
    m += ",\"status\":" + std::to_string(r.status);
    m += ",\"bytes\":" + std::to_string(r.bytes);
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.3f", r.duration_ms);
    m += ",\"duration_ms\":";
    m += ms;
    m += ",\"user_agent\":" + json_quote(r.user_agent);
    if (r.cut) m += ",\"cut\":true";
    log.info(m);
    return;
  }
  log.info("access {} \"{} {}\" {} {}B {:.3f}ms rid={} ua={}{}", r.client_ip, r.method, r.target,
           r.status, r.bytes, r.duration_ms, r.request_id, json_quote(r.user_agent),
           r.cut ? " CUT" : "");
}

}  // namespace fusproxy::server
