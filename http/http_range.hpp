#pragma once
// RFC 9110 byte ranges, validators and conditional requests, as pure functions: no I/O,
// no Beast. The server feeds them header values and a representation's size and
// validators, and gets back what to answer (200, 206, 304, 412 or 416).
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/http_date.hpp"

namespace fusproxy::server::http {

// ---- HTTP-date (RFC 9110 5.6.7): protocol/http_date.hpp, shared with the upstream client ----

using http_date::format_http_date;
using http_date::parse_http_date;

// ---- entity tags (RFC 9110 8.8.3) ----

struct entity_tag {
  bool weak = false;
  std::string_view opaque;  // between the quotes
};
// One entity-tag (`"x"` or `W/"x"`); nullopt if malformed.
std::optional<entity_tag> parse_entity_tag(std::string_view text);
bool strong_match(const entity_tag& a, const entity_tag& b);
bool weak_match(const entity_tag& a, const entity_tag& b);

// True if a `*` or a comma-separated list of entity tags contains one that matches
// `current` (strong or weak comparison). A malformed list matches nothing.
bool etag_list_matches(std::string_view header, const entity_tag& current, bool strong);

// ---- Range (RFC 9110 14.1, 14.2) ----

struct byte_range {
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
  std::uint64_t length() const { return last - first + 1; }
  friend bool operator==(const byte_range&, const byte_range&) = default;
};

enum class range_kind {
  none,           // no Range header
  ignored,        // not bytes, syntactically invalid, numbers that overflow, or several
                  // disjoint ranges: answer the full representation (200)
  unsatisfiable,  // 416 with `Content-Range: bytes */size`
  single,         // 206 with `Content-Range: bytes first-last/size`
};

struct range_request {
  range_kind kind = range_kind::none;
  byte_range range;  // valid when kind == single
};

// Parses a Range header value against a representation of `size` bytes.
// Several ranges: the satisfiable ones are sorted and coalesced when they overlap or
// touch; if that leaves one range it is served as a single 206, otherwise the Range is
// ignored (a full 200, which RFC 9110 allows; multipart/byteranges is not produced).
// More than max_range_specs specs are ignored too (a cheap defence against abuse).
// A zero-size representation satisfies no int-range (416); a suffix range on it selects
// the (empty) whole representation: ignored.
inline constexpr std::size_t max_range_specs = 64;
range_request parse_range(std::string_view header, std::uint64_t size);

// "bytes 0-99/1000" and "bytes */1000".
std::string content_range(const byte_range& r, std::uint64_t size);
std::string unsatisfied_content_range(std::uint64_t size);

// ---- conditional requests (RFC 9110 13.2.2) ----

// What the server knows about the representation.
struct validators {
  std::string_view etag;                     // as sent, quoted: "\"abc\"" (strong); may be empty
  std::optional<std::time_t> last_modified;  // treated as strong: builds are immutable
};

// The request's relevant header values; absent headers are nullopt.
struct request_conditions {
  bool get = true;    // GET (Range and If-Range apply)
  bool head = false;  // HEAD (304 applies like GET)
  std::optional<std::string_view> if_match;
  std::optional<std::string_view> if_none_match;
  std::optional<std::string_view> if_modified_since;
  std::optional<std::string_view> if_unmodified_since;
  std::optional<std::string_view> if_range;
  std::optional<std::string_view> range;
};

enum class answer {
  full,                   // 200 with the whole representation
  partial,                // 206 with `range`
  not_modified,           // 304
  precondition_failed,    // 412
  range_not_satisfiable,  // 416
};

struct response_plan {
  answer kind = answer::full;
  byte_range range;  // when partial
};

// RFC 9110 13.2.2's order: If-Match, else If-Unmodified-Since (412); If-None-Match, else
// If-Modified-Since for GET/HEAD (304; If-None-Match failing on other methods: 412);
// then, for GET only, If-Range decides whether Range is honoured.
response_plan plan_response(const request_conditions& req, const validators& rep,
                            std::uint64_t size);

// If-Range: honour Range only if the value is a strong ETag equal to the current one,
// or an HTTP-date exactly equal to Last-Modified.
bool if_range_holds(std::string_view if_range, const validators& rep);

}  // namespace fusproxy::server::http
