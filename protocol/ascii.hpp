// ASCII rules for protocol tokens: header and attribute names, XML tags, URL schemes,
// model/region codes, file names. Case-insensitive means ASCII only here (never the C
// locale's idea of a letter), so "ETag" equals "etag" and nothing outside A-Z/a-z folds.
// One copy for every module (the project had seven).
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace fusproxy::protocol::ascii {

constexpr char to_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}
constexpr char to_upper(char c) noexcept {
  return c >= 'a' && c <= 'z' ? char(c - 'a' + 'A') : c;
}

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return to_lower(x) == to_lower(y);
         });
}

constexpr bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

inline std::string to_upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = to_upper(c);
  return out;
}

inline std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = to_lower(c);
  return out;
}

constexpr bool is_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// `s` without leading and trailing spaces, tabs, CRs and LFs.
constexpr std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace fusproxy::protocol::ascii
