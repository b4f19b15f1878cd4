#include "http/http_range.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <vector>

#include "protocol/ascii.hpp"

namespace fusproxy::server::http {
namespace {

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

using protocol::ascii::iequals;

}  // namespace

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
