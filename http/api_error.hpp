#pragma once
// The errors clients see: each kind has one HTTP status and one stable `code` (api.md),
// rendered as {"error":{"code":"…","message":"…"}}.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "firmware/model/firmware_types.hpp"

namespace fusproxy::server {

enum class api_error {
  bad_request,             // 400 malformed model/region/version/request
  unauthorized,            // 401 missing or wrong bearer token
  forbidden,               // 403 a cross-site management request (CSRF) from a browser
  not_found,               // 404 unknown route, model/region, no firmware
  not_hosted,              // 404 that build is gone (may name the served one)
  method_not_allowed,      // 405 (with Allow)
  precondition_failed,     // 412 If-Match / If-Unmodified-Since
  payload_too_large,       // 413 request body above the limit
  uri_too_long,            // 414 request target above the limit
  range_not_satisfiable,   // 416 (with Content-Range: bytes */size)
  rate_limited,            // 429 (with Retry-After): rate limit or download caps
  header_too_large,        // 431 request header above the limit
  internal_error,          // 500 a bug; logged
  not_implemented,         // 501 a route whose feature has not arrived yet
  upstream_error,          // 502 garbage, firewall page, unexpected status
  upstream_auth,           // 502 keys rejected
  upstream_imei_required,  // 502 legacy dialect needs --imei
  upstream_unreachable,    // 503 upstream cannot be reached
  shutting_down,           // 503 the service is stopping
  not_ready,               // 503 /readyz: cannot serve yet
  upstream_timeout,        // 504
  in_use,                  // 409 a cached build being read or fetched cannot be removed now
  cache_full,              // 507 no room in the cache for this build (disk or --cache-max-bytes)
  not_a_tar,               // 415 a tar listing or entry asked of a member that is not a tar
  bad_archive,             // 502 a tar member or LZ4 frame of the build is corrupt
};

struct status_and_code {
  unsigned status;
  std::string_view code;
};

status_and_code describe(api_error e) noexcept;

// The answer to a firmware service error: the one place the domain meets HTTP statuses.
api_error api_error_of(firmware_errc e) noexcept;

// Extra string members of the "error" object, e.g. served_version and download_url.
using error_fields = std::vector<std::pair<std::string, std::string>>;

// {"error":{"code":"…","message":"…", extra…}} (a JSON text, no trailing newline).
std::string error_body(api_error e, std::string_view message, const error_fields& extra = {});

}  // namespace fusproxy::server
