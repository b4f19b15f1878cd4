#pragma once
// Dates on the wire as pure functions: HTTP-date (RFC 9110 5.6.7) for the server's Date,
// Last-Modified and conditionals and the upstream client's Retry-After; ISO 8601 UTC for
// the JSON documents.
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace fusproxy::http_date {

// IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string format_http_date(std::time_t t);
// IMF-fixdate, or the obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT"; two-digit years
// below 70 are 20xx) and asctime ("Sun Nov  6 08:49:37 1994") forms. nullopt if invalid.
std::optional<std::time_t> parse_http_date(std::string_view text);

// ISO 8601 in UTC, e.g. "2021-10-07T16:59:09Z".
std::string iso8601_utc(std::time_t t);

}  // namespace fusproxy::http_date
