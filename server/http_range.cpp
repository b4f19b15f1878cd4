#include "server/http_range.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <vector>

namespace fusproxy::server::http {
namespace {

constexpr std::array<const char*, 7> day_names = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 7> long_day_names = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                       "Thursday", "Friday", "Saturday"};
constexpr std::array<const char*, 12> month_names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm): pure,
// unlike timegm() which depends on the process's locale/timezone machinery.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool is_leap(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned days_in_month(std::int64_t y, unsigned m) {
  static constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

// A tiny cursor for the fixed date grammars.
struct cursor {
  std::string_view s;
  bool literal(std::string_view lit) {
    if (s.substr(0, lit.size()) != lit) return false;
    s.remove_prefix(lit.size());
    return true;
  }
  bool digits(unsigned count, unsigned& out) {
    if (s.size() < count) return false;
    out = 0;
    for (unsigned i = 0; i < count; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + static_cast<unsigned>(s[i] - '0');
    }
    s.remove_prefix(count);
    return true;
  }
  bool month(unsigned& out) {
    for (unsigned i = 0; i < 12; ++i)
      if (literal(month_names[i])) {
        out = i + 1;
        return true;
      }
    return false;
  }
  bool time_of_day(unsigned& h, unsigned& mi, unsigned& se) {
    return digits(2, h) && literal(":") && digits(2, mi) && literal(":") && digits(2, se);
  }
};

std::optional<std::time_t> make_time(std::int64_t y, unsigned mo, unsigned d, unsigned h,
                                     unsigned mi, unsigned se) {
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
    return std::nullopt;
  return static_cast<std::time_t>(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se);
}

std::optional<std::time_t> parse_imf_fixdate(cursor c) {
  // Sun, 06 Nov 1994 08:49:37 GMT
  unsigned d, mo, y, h, mi, se;
  bool day_ok = false;
  for (const auto* n : day_names) day_ok = day_ok || c.literal(n);
  if (!day_ok || !c.literal(", ") || !c.digits(2, d) || !c.literal(" ") || !c.month(mo) ||
      !c.literal(" ") || !c.digits(4, y) || !c.literal(" ") || !c.time_of_day(h, mi, se) ||
      !c.literal(" GMT") || !c.s.empty())
    return std::nullopt;
  return make_time(y, mo, d, h, mi, se);
}

std::optional<std::time_t> parse_rfc850(cursor c) {
  // Sunday, 06-Nov-94 08:49:37 GMT
  unsigned d, mo, yy, h, mi, se;
  bool day_ok = false;
  for (const auto* n : long_day_names) day_ok = day_ok || c.literal(n);
  if (!day_ok || !c.literal(", ") || !c.digits(2, d) || !c.literal("-") || !c.month(mo) ||
      !c.literal("-") || !c.digits(2, yy) || !c.literal(" ") || !c.time_of_day(h, mi, se) ||
      !c.literal(" GMT") || !c.s.empty())
    return std::nullopt;
  return make_time(yy < 70 ? 2000 + yy : 1900 + yy, mo, d, h, mi, se);
}

std::optional<std::time_t> parse_asctime(cursor c) {
  // Sun Nov  6 08:49:37 1994
  unsigned d, mo, y, h, mi, se;
  bool day_ok = false;
  for (const auto* n : day_names) day_ok = day_ok || c.literal(n);
  if (!day_ok || !c.literal(" ") || !c.month(mo) || !c.literal(" ")) return std::nullopt;
  if (c.literal(" ")) {
    if (!c.digits(1, d)) return std::nullopt;
  } else if (!c.digits(2, d)) {
    return std::nullopt;
  }
  if (!c.literal(" ") || !c.time_of_day(h, mi, se) || !c.literal(" ") || !c.digits(4, y) ||
      !c.s.empty())
    return std::nullopt;
  return make_time(y, mo, d, h, mi, se);
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits a list (RFC 9110 5.6.1) on commas, trimming OWS; empty elements are skipped.
template <class F>
bool for_each_element(std::string_view list, F&& f) {
  while (true) {
    const auto comma = list.find(',');
    const auto element = trim_ows(list.substr(0, comma));
    if (!element.empty() && !f(element)) return false;
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && ptr == s.data() + s.size();  // overflow -> false
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

}  // namespace

std::string format_http_date(std::time_t t) {
  const std::int64_t secs = t;
  std::int64_t days = secs / 86400;
  std::int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  std::int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  const auto weekday = static_cast<unsigned>(((days % 7) + 11) % 7);  // 1970-01-01: Thursday
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04lld %02lld:%02lld:%02lld GMT", day_names[weekday],
                d, month_names[m - 1], static_cast<long long>(y),
                static_cast<long long>(rem / 3600), static_cast<long long>(rem / 60 % 60),
                static_cast<long long>(rem % 60));
  return buf;
}

std::optional<std::time_t> parse_http_date(std::string_view text) {
  text = trim_ows(text);
  if (auto t = parse_imf_fixdate({text})) return t;
  if (auto t = parse_rfc850({text})) return t;
  return parse_asctime({text});
}

std::optional<entity_tag> parse_entity_tag(std::string_view text) {
  entity_tag tag;
  if (text.substr(0, 2) == "W/") {
    tag.weak = true;
    text.remove_prefix(2);
  }
  if (text.size() < 2 || text.front() != '"' || text.back() != '"') return std::nullopt;
  tag.opaque = text.substr(1, text.size() - 2);
  for (unsigned char c : tag.opaque)
    if (!(c == 0x21 || (c >= 0x23 && c != 0x7f))) return std::nullopt;  // etagc
  return tag;
}

bool strong_match(const entity_tag& a, const entity_tag& b) {
  return !a.weak && !b.weak && a.opaque == b.opaque;
}

bool weak_match(const entity_tag& a, const entity_tag& b) {
  return a.opaque == b.opaque;
}

bool etag_list_matches(std::string_view header, const entity_tag& current, bool strong) {
  if (trim_ows(header) == "*") return true;
  bool matched = false;
  const bool well_formed = for_each_element(header, [&](std::string_view element) {
    const auto tag = parse_entity_tag(element);
    if (!tag) return false;
    if (strong ? strong_match(*tag, current) : weak_match(*tag, current)) matched = true;
    return true;
  });
  return well_formed && matched;
}

range_request parse_range(std::string_view header, std::uint64_t size) {
  header = trim_ows(header);
  const auto eq = header.find('=');
  if (eq == std::string_view::npos || !iequals(header.substr(0, eq), "bytes"))
    return {range_kind::ignored, {}};

  std::vector<byte_range> satisfiable;
  std::size_t specs = 0;
  bool suffix_on_empty = false;
  const bool valid = for_each_element(header.substr(eq + 1), [&](std::string_view spec) {
    if (++specs > max_range_specs) return false;
    const auto dash = spec.find('-');
    if (dash == std::string_view::npos) return false;
    const auto first_text = spec.substr(0, dash);
    const auto last_text = spec.substr(dash + 1);
    if (first_text.empty()) {  // suffix-range: -n
      std::uint64_t n;
      if (!parse_u64(last_text, n)) return false;
      if (n == 0) return true;  // valid but unsatisfiable
      if (size == 0) {
        suffix_on_empty = true;
        return true;
      }
      satisfiable.push_back({n >= size ? 0 : size - n, size - 1});
      return true;
    }
    std::uint64_t first;
    if (!parse_u64(first_text, first)) return false;
    std::uint64_t last = UINT64_MAX;
    if (!last_text.empty()) {
      if (!parse_u64(last_text, last) || last < first) return false;
    }
    if (first < size) satisfiable.push_back({first, std::min(last, size - 1)});
    return true;
  });
  if (!valid || specs == 0) return {range_kind::ignored, {}};
  if (satisfiable.empty())
    return {suffix_on_empty ? range_kind::ignored : range_kind::unsatisfiable, {}};

  std::sort(satisfiable.begin(), satisfiable.end(),
            [](const byte_range& a, const byte_range& b) { return a.first < b.first; });
  byte_range merged = satisfiable.front();
  for (std::size_t i = 1; i < satisfiable.size(); ++i) {
    const auto& r = satisfiable[i];
    if (r.first > merged.last + 1) return {range_kind::ignored, {}};  // disjoint: full 200
    merged.last = std::max(merged.last, r.last);
  }
  return {range_kind::single, merged};
}

std::string content_range(const byte_range& r, std::uint64_t size) {
  return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" +
         std::to_string(size);
}

std::string unsatisfied_content_range(std::uint64_t size) {
  return "bytes */" + std::to_string(size);
}

bool if_range_holds(std::string_view if_range, const validators& rep) {
  if_range = trim_ows(if_range);
  if (!if_range.empty() && (if_range.front() == '"' || if_range.substr(0, 2) == "W/")) {
    const auto requested = parse_entity_tag(if_range);
    const auto current = parse_entity_tag(rep.etag);
    return requested && current && strong_match(*requested, *current);
  }
  const auto date = parse_http_date(if_range);
  return date && rep.last_modified && *date == *rep.last_modified;
}

response_plan plan_response(const request_conditions& req, const validators& rep,
                            std::uint64_t size) {
  const auto current = parse_entity_tag(rep.etag);

  // 1-2: If-Match, else If-Unmodified-Since.
  if (req.if_match) {
    if (!current || !etag_list_matches(*req.if_match, *current, /*strong=*/true))
      return {answer::precondition_failed, {}};
  } else if (req.if_unmodified_since) {
    const auto date = parse_http_date(*req.if_unmodified_since);
    // An invalid date is ignored (RFC 9110 13.1.4).
    if (date && rep.last_modified && *rep.last_modified > *date)
      return {answer::precondition_failed, {}};
  }

  // 3-4: If-None-Match, else If-Modified-Since (GET/HEAD only).
  if (req.if_none_match) {
    if (current && etag_list_matches(*req.if_none_match, *current, /*strong=*/false))
      return {req.get || req.head ? answer::not_modified : answer::precondition_failed, {}};
    // "*" matches any current representation, even one without an ETag.
    if (!current && trim_ows(*req.if_none_match) == "*")
      return {req.get || req.head ? answer::not_modified : answer::precondition_failed, {}};
  } else if ((req.get || req.head) && req.if_modified_since) {
    const auto date = parse_http_date(*req.if_modified_since);
    if (date && rep.last_modified && *rep.last_modified <= *date) return {answer::not_modified, {}};
  }

  // 5: Range, for GET only, subject to If-Range.
  if (!req.get || !req.range) return {answer::full, {}};
  if (req.if_range && !if_range_holds(*req.if_range, rep)) return {answer::full, {}};
  const auto range = parse_range(*req.range, size);
  switch (range.kind) {
    case range_kind::single:
      return {answer::partial, range.range};
    case range_kind::unsatisfiable:
      return {answer::range_not_satisfiable, {}};
    case range_kind::none:
    case range_kind::ignored:
      break;
  }
  return {answer::full, {}};
}

}  // namespace fusproxy::server::http
