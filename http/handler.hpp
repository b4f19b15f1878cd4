#pragma once
// The request handler's decisions as pure functions, in the style of Beast's
// handle_request: from what a request says (and what the firmware service answered), what
// to send. server/ reads the request, asks the service, and writes only what these
// decide. No sockets, no Beast.
#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <boost/system/result.hpp>

#include "firmware/model/firmware_types.hpp"
#include "http/api_error.hpp"
#include "http/http_range.hpp"
#include "http/routes.hpp"
#include "http/status_page.hpp"

namespace fusproxy::server {

using header_fields = std::vector<std::pair<std::string, std::string>>;

// A small, fully buffered answer (JSON, text, HTML, or no body).
struct reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  header_fields headers;
  bool close = false;  // end the connection after it
};

// {"error":{…}} with the status of `e`, never cached.
reply error_reply(api_error e, std::string_view message, const error_fields& extra = {});
// A firmware service error; not_hosted with a served build names it and its download URL.
reply service_error_reply(const service_error& e, std::string_view model, std::string_view region);
// Age and Warning: 110 when an answer is served stale (upstream failing).
void add_freshness(header_fields& headers, const freshness& fresh);
// A status page answer (http/status_page.hpp) as a reply.
reply page_reply(page_answer a);
// A JSON document with its Cache-Control, and Age/Warning when it is a stale answer.
reply json_reply(std::string body, std::string cache_control, const freshness& fresh = {});

// GET …/feed.atom: what the feed's answer depends on besides the version list.
struct feed_request {
  std::string_view host;               // the Host header: absolute links when a plain host[:port]
  bool secure = false;                 // the client came over TLS: https:// links
  std::string_view if_none_match;      // a feed reader polling
  std::string cache_control;           // the route's policy
  std::string_view generator_version;  // fusproxy's version
};
// The Atom feed (http/atom_feed.hpp) with a strong ETag of its bytes (304 when
// If-None-Match names it) and Vary: Host.
reply feed_reply(const version_list& list, const feed_request& req);

// The parts of a request the decisions look at (the edge fills it from the parsed request).
struct request_view {
  std::string_view method;  // "GET", "HEAD", …
  std::string_view authorization;
  std::string_view origin;
  std::string_view sec_fetch_site;
  std::string_view host;
  std::string_view cookie;
  std::string_view accept;
  // Conditional and Range headers; absent: nullopt.
  std::optional<std::string_view> if_match, if_none_match, if_modified_since, if_unmodified_since,
      if_range, range;
};

// Before the service is asked: health first (always answered, even while stopping), then
// shutdown, CSRF, the token, the per-client rate limit, a bad target, the method.
struct admission {
  enum kind_t {
    answer,  // send `answer` as it is
    health,  // /healthz or /readyz: the edge fills in the state
    route_ok,
  } kind = answer;
  reply refusal;  // kind == answer
};
struct admission_rules {
  std::string_view token;  // --token ("" = open)
  bool shutting_down = false;
  std::time_t now = 0;  // for the sign-in cookie's expiry
  // Asks the rate limiter for this client (called only for authorised requests); false:
  // refused, with the Retry-After seconds set.
  std::function<bool(std::uint32_t& retry_after)> rate_allows;
};
admission admit(const request_view& req, const boost::system::result<route, request_error>& parsed,
                const admission_rules& rules);

// A download representation as the decisions see it.
struct representation_view {
  std::uint64_t size = 0;
  std::string_view etag;
  std::time_t last_modified = 0;
  std::string_view content_type;
  std::string_view filename;
  freshness fresh;
  // False for an LZ4 image whose decoded size is not known yet: the whole body, chunked,
  // Range ignored (then `size` means nothing).
  bool size_known = true;
};
// What to stream: the status line and headers, then `length` bytes from `first`.
struct stream_plan {
  unsigned status = 200;  // 200 or 206
  std::uint64_t first = 0;
  std::uint64_t length = 0;
  header_fields headers;  // Content-Type, Content-Disposition, validators, Content-Range, …
};
// Conditionals and Range against the representation (RFC 9110 13.2.2, 14): 304, 412 and
// 416 as replies, 200/206 as a stream plan. `cache_control` is the route's policy.
std::variant<reply, stream_plan> decide_download(const request_view& req,
                                                 const representation_view& rep,
                                                 std::string_view cache_control);

// A file name safe inside Content-Disposition's quoted string.
std::string safe_filename(std::string_view name);

}  // namespace fusproxy::server
