#pragma once
// The status page at `/` (one self-contained HTML page: inline CSS and JS, no external
// assets) and the /api/status JSON it polls. Shape: docs/operations.md.
#include <cstdint>
#include <ctime>
#include <map>
#include <string>
#include <string_view>

#include "config/settings.hpp"

namespace fusproxy::server {

// The HTML of `/`: polls /api/status every second, shows active downloads with progress,
// builds, upstream counters, and a model/region lookup form.
std::string_view status_page_html();

struct status_inputs {
  const config::settings* settings = nullptr;
  std::string_view version;  // fusproxy's version
  std::time_t started_at = 0;
  std::int64_t uptime_seconds = 0;
  bool shutting_down = false;
  std::int64_t connections = 0;
  std::int64_t requests_in_flight = 0;
  std::int64_t downloads_active = 0;
  std::int64_t downloads_queued = 0;  // waiting for a download slot
  std::uint64_t bytes_served = 0;
  // Download responses streaming now, by build_key(model, region, version).
  std::map<std::string, std::int64_t> clients_by_build;
  // firmware_service::status_json(): its "resolver"/"upstream" counters, "builds" (or
  // "known_builds") and "downloads" are lifted to the top level; the whole object is also
  // kept as "firmware". Anything that does not parse as an object is treated as {}.
  std::string_view firmware_json;
};

// "MODEL/REGION/VERSION" (4-part version with '/'): how builds are matched across sources.
std::string build_key(std::string_view model, std::string_view region, std::string_view version);

// The /api/status document (a JSON object text).
std::string status_json(const status_inputs& in);

// The effective settings as a JSON object, secrets masked: what /api/status shows.
std::string config_summary_json(const config::settings& s);

}  // namespace fusproxy::server
