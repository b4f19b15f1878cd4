#pragma once
// Request targets -> routes, with strict validation of model, region and version so that
// nothing malformed ever reaches upstream. Pure: no I/O, no Beast.
#include <boost/system/result.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "firmware/model/firmware_types.hpp"  // version_ref
#include "http/api_error.hpp"

namespace fusproxy::server {

enum class route_kind {
  index,       // GET /              status page for people
  asset,       // GET /assets/{name} its style.css and app.js (no token needed)
  login,       // GET, POST /login   its sign-in form for --token (no token needed)
  logout,      // POST /logout       removes the sign-in cookie
  api_status,  // GET /api/status    the same as JSON
  healthz,     // GET /healthz
  readyz,      // GET /readyz
  metrics,     // GET /metrics
  versions,    // GET /firmware/{model}/{region}
  feed,        // GET /firmware/{model}/{region}/feed.atom   the versions as an Atom feed
  metadata,    // GET /firmware/{model}/{region}/{version}
  download,    // GET, HEAD …/{version}/download[?encrypted=1]
  files,       // GET …/{version}/files
  file,        // GET, HEAD …/{version}/files/{name}   (also {member}/{entry path}: issue 14)
  entries,     // GET …/{version}/files/{member}/        the entries of a tar member
  mirrors,     // GET, POST /api/mirror            mirrored model/regions (docs/cache.md)
  mirror,      // DELETE /api/mirror/{model}/{region}
  cached,      // DELETE /api/cache/{file name}     a cached build (operators)
};

struct route {
  route_kind kind = route_kind::index;
  std::string model;   // upper-case
  std::string region;  // upper-case
  version_ref version;
  bool encrypted = false;  // download?encrypted=1
  std::string file_name;   // files/{name}, percent-decoded, segments joined by '/' (entries:
                           // {member}/{entry}); assets/{name}
};

// Why a request target was refused, and how to answer.
struct request_error {
  api_error kind = api_error::bad_request;
  std::string message;
};

}  // namespace fusproxy::server

namespace fusproxy::server {
[[noreturn]] void throw_exception_from_error(const request_error& e,
                                             const boost::source_location& loc);

inline constexpr std::size_t max_target_length = 2048;

// Parses an origin-form request target ("/path?query"). Unknown paths: not_found;
// malformed model/region/version/name or percent-encoding: bad_request; too long:
// uri_too_long. Unknown query parameters are ignored.
boost::system::result<route, request_error> parse_target(std::string_view target);

// True if `method` (e.g. "GET") may be used on a route: GET and HEAD, but the management
// routes: /api/mirror GET, POST; /api/mirror/{model}/{region} and /api/cache/{name} DELETE;
// /login GET, HEAD, POST; /logout POST.
bool method_allowed(route_kind kind, std::string_view method);
// The Allow header value for a route.
std::string_view allowed_methods(route_kind kind);

// Validation and normalisation, exposed for the resolver and for tests.
std::optional<std::string> normalize_model(std::string_view text);   // [A-Z0-9]+(-[A-Z0-9]+)*, <=32
std::optional<std::string> normalize_region(std::string_view text);  // [A-Z0-9]{2,4}
std::optional<version_ref> normalize_version(std::string_view decoded);
// Decodes %XX; nullopt on a bad escape or a decoded NUL.
std::optional<std::string> percent_decode(std::string_view text);

// The versioned path of a build's routes, e.g.
// /firmware/SM-A207F/SER/A207FXXU2CUI2_A207FOXM2CUI2_A207FXXU2CUI2_A207FXXU2CUI2/download.
// `version` is the 4-part form with '/' (or already with '_').
std::string firmware_path(std::string_view model, std::string_view region, std::string_view version,
                          std::string_view suffix = "");
// The management request a management route (mirrors, mirror, cached) asks for, with the
// POST body {"model":"SM-A207F","region":"SER"} validated; bad_request when it is not.
boost::system::result<management_request, request_error> parse_management(const route& rt,
                                                                          std::string_view method,
                                                                          std::string_view body);

// Short name of a route kind for logs and metrics labels ("download", "metadata", …).
std::string_view route_label(route_kind kind);

}  // namespace fusproxy::server
