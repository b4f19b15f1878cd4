#include "protocol/http_date.hpp"

#include <array>
#include <cstdio>

namespace fusproxy::http_date {
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

std::string iso8601_utc(std::time_t t) {
  // Reuse the IMF-fixdate arithmetic: "Sun, 06 Nov 1994 08:49:37 GMT".
  const auto d = format_http_date(t);
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int month = 0;
  for (int i = 0; i < 12; ++i)
    if (d.compare(8, 3, months[i]) == 0) month = i + 1;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s-%02d-%sT%sZ", d.substr(12, 4).c_str(), month,
                d.substr(5, 2).c_str(), d.substr(17, 8).c_str());
  return buf;
}

}  // namespace fusproxy::http_date
