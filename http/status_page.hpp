#pragma once
// The status page for people: its files (http/status_page/, embedded at build time) as
// answers with validators, the sign-in form for --token, and the /api/status JSON the page
// polls (shape: docs/operations.md). Pure: the edge copies a page_answer into its reply.
#include <boost/json/object.hpp>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/settings.hpp"

namespace fusproxy::server {

// An answer of the page's routes (`/`, `/assets/{name}`, `/login`, `/logout`).
struct page_answer {
  unsigned status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// GET/HEAD of a page file ("index.html" for `/`; "style.css", "app.js" under /assets/):
// its bytes with Content-Type, a strong ETag (SHA-256 of the file) and `no-cache` (reused
// after a 304 revalidation, so a new build's page shows at once); 304 when
// `if_none_match` names the ETag. `private_cache` (with --token) keeps shared caches out.
// nullopt for a name that is not a page file (login.html is served by sign_in_answer).
std::optional<page_answer> page_file_answer(std::string_view name, std::string_view if_none_match,
                                            bool private_cache);

// What /login and /logout are asked.
struct sign_in_request {
  std::string_view method;  // "GET" or "POST"
  std::string_view body;    // POST /login: application/x-www-form-urlencoded "token=…"
  std::string_view token;   // --token; empty: no sign-in needed
  std::string_view origin, sec_fetch_site, host;  // for the cross-site (CSRF) refusal
  bool secure = false;                            // TLS: the cookie gets Secure
  std::int64_t now = 0;                           // Unix seconds
};
// GET /login: the form. POST /login: the right token -> 303 to `./` with the session
// cookie (server/auth.hpp); a wrong one -> 401 and the form saying so; cross-site -> 403.
// Without --token: 303 to `./`.
page_answer sign_in_answer(const sign_in_request& r);
// POST /logout: 303 to `login` removing the cookie (cross-site: 403).
page_answer sign_out_answer(const sign_in_request& r);
// The 401 body a browser asking for `/` without credentials gets: the sign-in form.
page_answer sign_in_required_answer();

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
  // kept as "firmware".
  boost::json::object firmware;
};

// "MODEL/REGION/VERSION" (4-part version with '/'): how builds are matched across sources.
std::string build_key(std::string_view model, std::string_view region, std::string_view version);

// The /api/status document (the effective settings in it have their secrets masked).
boost::json::object status_json(const status_inputs& in);

}  // namespace fusproxy::server
