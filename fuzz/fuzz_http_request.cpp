// libFuzzer target: the server's pure request parsers. The input is split into fields by
// '\n': request target, Range, If-Range, If-None-Match, If-Modified-Since, then a size.
// Whatever the bytes, the parsers must return a typed result: no crash, no UB, and the
// plans they produce must stay inside the representation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_range.hpp"
#include "http/routes.hpp"

using namespace fusproxy::server;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (fields.size() < 6) {
    const auto nl = input.find('\n', start);
    if (nl == std::string_view::npos) {
      fields.push_back(input.substr(start));
      break;
    }
    fields.push_back(input.substr(start, nl - start));
    start = nl + 1;
  }
  fields.resize(6);

  if (auto r = parse_target(fields[0])) {
    (void)route_label(r->kind);
    (void)method_allowed(r->kind, "GET");
    if (!r->model.empty() && !r->region.empty())
      (void)firmware_path(r->model, r->region, r->version.text, "download");
  }
  (void)percent_decode(fields[0]);
  (void)normalize_model(fields[0]);
  (void)normalize_region(fields[0]);
  if (auto d = percent_decode(fields[0])) (void)normalize_version(*d);

  // A size from the last field (any value, including 0 and huge ones).
  std::uint64_t rep_size = 0;
  for (char c : fields[5].substr(0, 20))
    rep_size = rep_size * 10 + static_cast<std::uint64_t>(static_cast<unsigned char>(c) % 10);

  const auto range = http::parse_range(fields[1], rep_size);
  (void)range;
  (void)http::parse_http_date(fields[4]);
  (void)http::parse_entity_tag(fields[3]);
  http::request_conditions cond;
  cond.get = true;
  cond.range = fields[1];
  if (!fields[2].empty()) cond.if_range = fields[2];
  if (!fields[3].empty()) cond.if_none_match = fields[3];
  if (!fields[4].empty()) cond.if_modified_since = fields[4];
  const http::validators val{"\"abc\"", 1633625949};
  const auto plan = http::plan_response(cond, val, rep_size);
  if (plan.kind == http::answer::partial) {
    // A partial answer must name bytes that exist.
    if (plan.range.first > plan.range.last || plan.range.last >= rep_size) std::abort();
    (void)http::content_range(plan.range, rep_size);
  }
  return 0;
}
