#include "upstream/core/upstream_wire.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include <boost/url/parse.hpp>

#include "protocol/ascii.hpp"
#include "protocol/http_date.hpp"

namespace fusproxy::upstream {
namespace {

using protocol::ascii::iequals;
using protocol::ascii::trim;

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string_view find_header(const header_list& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

std::string base_url::origin() const {
  return std::string(tls ? "https://" : "http://") + host + ":" + port;
}

result<base_url> parse_base_url(std::string_view url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed)
    return make_failure(errc::invalid_argument, "not an absolute URL: " + std::string(url));
  base_url out;
  const auto scheme = parsed->scheme();
  if (iequals(scheme, "https"))
    out.tls = true;
  else if (!iequals(scheme, "http"))
    return make_failure(errc::invalid_argument,
                        "URL scheme must be http or https: " + std::string(url));
  out.host = parsed->encoded_host();
  if (out.host.empty())
    return make_failure(errc::invalid_argument, "URL has no host: " + std::string(url));
  // An IPv6 literal is written "[::1]" in a URL but resolved without brackets.
  if (out.host.front() == '[' && out.host.back() == ']')
    out.host = out.host.substr(1, out.host.size() - 2);
  out.port = parsed->has_port() ? std::string(parsed->port()) : (out.tls ? "443" : "80");
  out.path = parsed->encoded_path();
  if (out.path.empty() || out.path.back() != '/') out.path += '/';
  if (out.path.front() != '/') out.path.insert(out.path.begin(), '/');
  return out;
}

bool cookie_jar::store(std::string_view set_cookie) {
  auto first = set_cookie.substr(0, set_cookie.find(';'));
  const auto eq = first.find('=');
  if (eq == std::string_view::npos) return false;
  const auto name = trim(first.substr(0, eq));
  auto value = trim(first.substr(eq + 1));
  if (name.empty()) return false;
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
    value = value.substr(1, value.size() - 2);
  bool expired = value.empty();
  // Attributes: only Max-Age<=0 matters (the server deleting the cookie); Expires dates in
  // the past are rare enough upstream not to parse dates.
  auto rest = set_cookie.substr(first.size());
  while (!rest.empty()) {
    rest.remove_prefix(1);  // ';'
    auto attr = rest.substr(0, rest.find(';'));
    rest.remove_prefix(attr.size());
    attr = trim(attr);
    const auto aeq = attr.find('=');
    if (aeq != std::string_view::npos && iequals(trim(attr.substr(0, aeq)), "Max-Age")) {
      const auto v = trim(attr.substr(aeq + 1));
      if (!v.empty() && (v.front() == '-' || v == "0")) expired = true;
    }
  }
  if (expired) {
    if (auto it = cookies_.find(name); it != cookies_.end()) cookies_.erase(it);
  } else {
    cookies_.insert_or_assign(std::string(name), std::string(value));
  }
  return true;
}

std::string cookie_jar::header() const {
  std::string out;
  for (const auto& [name, value] : cookies_) {
    if (!out.empty()) out += "; ";
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

std::optional<std::string> cookie_jar::get(std::string_view name) const {
  if (auto it = cookies_.find(name); it != cookies_.end()) return it->second;
  return std::nullopt;
}

std::string range_header(crypto::byte_range range) {
  return "bytes=" + std::to_string(range.begin) + "-" + std::to_string(range.end - 1);
}

std::optional<content_range> parse_content_range(std::string_view value) {
  value = trim(value);
  if (value.size() < 6 || !iequals(value.substr(0, 6), "bytes ")) return std::nullopt;
  value = trim(value.substr(6));
  const auto dash = value.find('-');
  const auto slash = value.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || dash > slash)
    return std::nullopt;
  auto first = parse_u64(value.substr(0, dash));
  auto last = parse_u64(value.substr(dash + 1, slash - dash - 1));
  auto total = parse_u64(value.substr(slash + 1));
  if (!first || !last || !total || *first > *last || *last >= *total) return std::nullopt;
  return content_range{*first, *last, *total};
}

result<void> check_range_answer(unsigned status, std::string_view content_range_value,
                                crypto::byte_range requested, std::uint64_t total) {
  auto fail = [&](std::string detail) {
    auto f = make_failure(errc::bad_range, std::move(detail));
    f.http_status = status;
    return f;
  };
  if (status != 206) return fail("expected 206 to a range request, got " + std::to_string(status));
  auto cr = parse_content_range(content_range_value);
  if (!cr) return fail("malformed Content-Range \"" + std::string(content_range_value) + "\"");
  const content_range want{requested.begin, requested.end - 1, total};
  if (!(*cr == want))
    return fail("Content-Range \"" + std::string(content_range_value) + "\" does not match bytes " +
                std::to_string(want.first) + "-" + std::to_string(want.last) + "/" +
                std::to_string(total));
  return {};
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::time_t now) {
  constexpr std::uint64_t week = 86400 * 7;
  value = trim(value);
  if (auto v = parse_u64(value)) {
    if (*v > week) return std::nullopt;
    return std::chrono::seconds(*v);
  }
  const auto date = http_date::parse_http_date(value);
  if (!date) return std::nullopt;
  if (*date <= now) return std::chrono::seconds(0);
  const auto wait = static_cast<std::uint64_t>(*date - now);
  if (wait > week) return std::nullopt;
  return std::chrono::seconds(wait);
}

failure map_http_status(service s, unsigned status, std::string_view retry_after, std::time_t now) {
  failure f;
  f.http_status = status;
  const auto status_text = "HTTP " + std::to_string(status);
  auto set = [&](errc e, std::string detail) {
    f.code = make_error_code(e);
    f.detail = std::move(detail);
  };
  switch (status) {
    case 400:
      if (s == service::fus)
        set(errc::bad_version, status_text + " (bad version or region)");
      else
        set(errc::upstream_status,
            status_text + (s == service::fota ? " (User-Agent refused?)" : ""));
      break;
    case 401:
      set(errc::auth, status_text);
      break;
    case 403:
      if (s == service::fota)
        set(errc::not_found, status_text + " (unknown model/region)");
      else
        set(errc::upstream_status, status_text + " (forbidden)");
      break;
    case 404:
      if (s == service::fota)
        set(errc::not_found, status_text);
      else
        set(errc::not_hosted, status_text);
      break;
    case 405:
      set(errc::upstream_status,
          status_text + (s == service::download ? " (file parameter URL-encoded?)" : ""));
      break;
    case 408:
      if (s == service::fota)
        set(errc::timeout, status_text);
      else
        set(errc::imei_required, status_text + " (IMEI/serial missing or invalid)");
      break;
    case 429:
    case 503:
      set(errc::rate_limited, status_text);
      if (auto ra = parse_retry_after(retry_after, now)) f.retry_after = *ra;
      break;
    case 504:
      set(errc::upstream_status,
          status_text +
              (s == service::download ? " (gateway timeout, or file parameter URL-encoded)" : ""));
      break;
    default:
      set(errc::upstream_status, status_text);
      break;
  }
  return f;
}

std::optional<failure> map_fus_status(std::string_view status) {
  status = trim(status);
  if (status == "200" || status == "S00") return std::nullopt;
  const auto text = "FUS Status " + std::string(status);
  if (status == "400" || status == "F01") return make_failure(errc::bad_version, text);
  if (status == "401") return make_failure(errc::auth, text);
  if (status == "404") return make_failure(errc::not_hosted, text);
  if (status == "408")
    return make_failure(errc::imei_required, text + " (IMEI/serial missing or invalid)");
  auto f = make_failure(errc::upstream_status, text);
  if (auto code = parse_u64(status))
    f.http_status = static_cast<unsigned>(std::min<std::uint64_t>(*code, 999));
  return f;
}

failure from_protocol_error(boost::system::error_code ec, std::string_view what) {
  using protocol::errc;
  std::string detail = std::string(what) + ": " + ec.message();
  if (ec == protocol::make_error_code(errc::firewall_page))
    return make_failure(upstream::errc::firewall, detail);
  if (ec == protocol::make_error_code(errc::too_large))
    return make_failure(upstream::errc::too_large, detail);
  if (ec == protocol::make_error_code(errc::bad_version))
    return make_failure(upstream::errc::bad_version, detail);
  return make_failure(upstream::errc::bad_answer, detail);
}

}  // namespace fusproxy::upstream

namespace fusproxy::upstream {
bool looks_like_html(std::string_view body) {
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.front())))
    body.remove_prefix(1);
  auto starts = [&](std::string_view p) {
    return body.size() >= p.size() && iequals(body.substr(0, p.size()), p);
  };
  return starts("<!doctype html") || starts("<html");
}
}  // namespace fusproxy::upstream
