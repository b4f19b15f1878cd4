#pragma once
// Pure helpers of the upstream client (no I/O, unit-tested without sockets): base URLs,
// the cookie jar, Range/Content-Range, Retry-After, and the mapping of upstream HTTP and
// FUS statuses to upstream::errc.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crypto/ranges.hpp"
#include "protocol/error.hpp"
#include "upstream/core/upstream_error.hpp"

namespace fusproxy::upstream {

using header_list = std::vector<std::pair<std::string, std::string>>;

// The first value of a header (case-insensitive name), or "".
std::string_view find_header(const header_list& headers, std::string_view name);

enum class http_method { get, post, head };

// "https://host[:port]/base/" split for connecting and building request targets.
struct base_url {
  bool tls = false;
  std::string host;
  std::string port;            // "443"/"80" when the URL has none
  std::string path;            // always ends with '/'
  std::string origin() const;  // "https://host:port", the connection pool's key
};
// invalid_argument unless http/https with a host.
result<base_url> parse_base_url(std::string_view url);

// The session's cookies (JSESSIONID, JSESSIONID_SVR and any other): one jar per upstream
// session, sent to every FUS host (asgard sends its whole jar on the download GET too).
class cookie_jar {
 public:
  // Stores one Set-Cookie header value ("NAME=VALUE; Path=/; HttpOnly"). Max-Age=0 or an
  // empty value removes the cookie. Returns false when the value has no NAME=.
  bool store(std::string_view set_cookie);
  // "A=1; B=2", or "" when empty.
  std::string header() const;
  std::optional<std::string> get(std::string_view name) const;
  bool empty() const { return cookies_.empty(); }

 private:
  std::map<std::string, std::string, std::less<>> cookies_;
};

// "bytes=s-e" for a half-open range [begin, end) (end > begin).
std::string range_header(crypto::byte_range range);

struct content_range {
  std::uint64_t first = 0;  // inclusive
  std::uint64_t last = 0;   // inclusive
  std::uint64_t total = 0;
  friend bool operator==(const content_range&, const content_range&) = default;
};
// "bytes 0-15/1024"; nullopt when malformed (also "bytes */1024" and an unknown total).
std::optional<content_range> parse_content_range(std::string_view value);
// The answer to a range request must be 206 with exactly "bytes s-e/total"; bad_range
// otherwise (http_status kept). A 401/403/404/429/503... is mapped by map_http_status
// first by the caller; this only judges a 2xx.
result<void> check_range_answer(unsigned status, std::string_view content_range_value,
                                crypto::byte_range requested, std::uint64_t total);

// Retry-After (RFC 9110 10.2.3): delta-seconds ("120") or an HTTP-date, which counts from
// `now` (0 s when already past). nullopt for garbage or more than a week.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::time_t now);

// An HTTP status in 200..299: the only answers that are no failure.
constexpr bool is_success(unsigned status) noexcept {
  return status >= 200 && status < 300;
}

// Which upstream answered: status codes mean different things per service.
enum class service { fus, fota, download };
// A failure for a non-2xx HTTP status (200..299 are not failures: callers do not ask).
// `now`: the clock a Retry-After date counts from.
failure map_http_status(service s, unsigned status, std::string_view retry_after = {},
                        std::time_t now = 0);
// A FUS XML Status: success (200, S00) gives nullopt.
std::optional<failure> map_fus_status(std::string_view status);
// A parse error of protocol/ (messages, versions) as an upstream failure.
failure from_protocol_error(boost::system::error_code ec, std::string_view what);

}  // namespace fusproxy::upstream

namespace fusproxy::upstream {
// An HTML page (web firewall, error page) rather than XML: "<!DOCTYPE html" or "<html".
bool looks_like_html(std::string_view body);
}  // namespace fusproxy::upstream
