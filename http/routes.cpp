#include "http/routes.hpp"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/throw_exception.hpp>
#include <cctype>
#include <stdexcept>
#include <vector>

namespace fusproxy::server {
namespace {

bool is_upper_alnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

bool all_upper_alnum(std::string_view s) {
  return std::all_of(s.begin(), s.end(), is_upper_alnum);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

request_error bad(std::string message) {
  return {api_error::bad_request, std::move(message)};
}
request_error not_found(std::string_view path) {
  return {api_error::not_found, "no route for " + std::string(path)};
}

}  // namespace

void throw_exception_from_error(const request_error& e, const boost::source_location& loc) {
  boost::throw_exception(std::invalid_argument(e.message), loc);
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_value(text[i + 1]);
      const int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return std::nullopt;
    out += c;
  }
  return out;
}

std::optional<std::string> normalize_model(std::string_view text) {
  auto m = to_upper(text);
  if (m.empty() || m.size() > 32 || m.front() == '-' || m.back() == '-') return std::nullopt;
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '-') {
      if (m[i - 1] == '-') return std::nullopt;
    } else if (!is_upper_alnum(m[i])) {
      return std::nullopt;
    }
  }
  return m;
}

std::optional<std::string> normalize_region(std::string_view text) {
  auto r = to_upper(text);
  if (r.size() < 2 || r.size() > 4 || !all_upper_alnum(r)) return std::nullopt;
  return r;
}

std::optional<version_ref> normalize_version(std::string_view decoded) {
  auto v = to_upper(decoded);
  if (v == "LATEST") return version_ref{version_ref::latest, "latest"};
  if (v.size() > 4 * 33) return std::nullopt;
  // Parts are separated by '_' or '/' (the latter arrives as %2F); never a mix.
  const bool underscores = v.find('_') != std::string::npos;
  const bool slashes = v.find('/') != std::string::npos;
  if (underscores && slashes) return std::nullopt;
  const char sep = underscores ? '_' : '/';
  std::vector<std::string_view> parts;
  std::string_view rest = v;
  while (true) {
    const auto at = rest.find(sep);
    parts.push_back(rest.substr(0, at));
    if (at == std::string_view::npos) break;
    rest.remove_prefix(at + 1);
  }
  for (auto p : parts)
    if (p.size() > 32 || !all_upper_alnum(p)) return std::nullopt;
  if (parts.size() == 1) {
    if (parts[0].size() < 4) return std::nullopt;
    return version_ref{version_ref::pda, std::string(parts[0])};
  }
  // PDA and CSC are always present; the phone (CP) part is empty on Wi-Fi-only devices and
  // the data part is sometimes left empty.
  if (parts.size() != 4 || parts[0].empty() || parts[1].empty()) return std::nullopt;
  std::string joined;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) joined += '/';
    joined += parts[i];
  }
  return version_ref{version_ref::full, std::move(joined)};
}

boost::system::result<route, request_error> parse_target(std::string_view target) {
  if (target.size() > max_target_length)
    return request_error{api_error::uri_too_long,
                         "request target longer than " + std::to_string(max_target_length)};
  if (target.empty() || target.front() != '/') return bad("request target must start with /");

  std::string_view path = target;
  std::string_view query;
  if (const auto q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  if (const auto h = query.find('#'); h != std::string_view::npos) query = query.substr(0, h);

  // Split on raw '/', then decode each segment: an encoded %2F stays inside its segment.
  std::vector<std::string> segments;
  std::string_view rest = path.substr(1);
  while (true) {
    const auto at = rest.find('/');
    auto decoded = percent_decode(rest.substr(0, at));
    if (!decoded) return bad("malformed percent-encoding in the path");
    segments.push_back(std::move(*decoded));
    if (at == std::string_view::npos) break;
    rest.remove_prefix(at + 1);
  }

  route r;
  if (segments.size() == 1) {
    const auto& s = segments[0];
    if (s.empty())
      r.kind = route_kind::index;
    else if (s == "healthz")
      r.kind = route_kind::healthz;
    else if (s == "readyz")
      r.kind = route_kind::readyz;
    else if (s == "metrics")
      r.kind = route_kind::metrics;
    else if (s == "login")
      r.kind = route_kind::login;
    else if (s == "logout")
      r.kind = route_kind::logout;
    else
      return not_found(path);
    return r;
  }
  if (segments.size() == 2 && segments[0] == "assets") {
    const auto& n = segments[1];
    const bool ok =
        !n.empty() && n.size() <= 64 && n[0] != '.' && std::all_of(n.begin(), n.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                 c == '-';
        });
    if (!ok) return not_found(path);
    r.kind = route_kind::asset;
    r.file_name = n;
    return r;
  }
  if (segments.size() == 2 && segments[0] == "api" && segments[1] == "status") {
    r.kind = route_kind::api_status;
    return r;
  }
  if (segments.size() == 2 && segments[0] == "api" && segments[1] == "mirror") {
    r.kind = route_kind::mirrors;
    return r;
  }
  if (segments.size() == 4 && segments[0] == "api" && segments[1] == "mirror") {
    auto model = normalize_model(segments[2]);
    if (!model) return bad("malformed model '" + segments[2] + "' (e.g. SM-A207F)");
    auto region = normalize_region(segments[3]);
    if (!region) return bad("malformed region '" + segments[3] + "' (2-4 letters/digits)");
    r.kind = route_kind::mirror;
    r.model = std::move(*model);
    r.region = std::move(*region);
    return r;
  }
  if (segments.size() == 3 && segments[0] == "api" && segments[1] == "cache") {
    const auto& n = segments[2];
    const bool ok =
        !n.empty() && n.size() <= 255 && n[0] != '.' && std::all_of(n.begin(), n.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
        });
    if (!ok) return bad("malformed file name '" + n + "'");
    r.kind = route_kind::cached;
    r.file_name = n;
    return r;
  }
  if (segments[0] == "api") return not_found(path);
  if (segments[0] != "firmware" || segments.size() < 3) return not_found(path);

  auto model = normalize_model(segments[1]);
  if (!model) return bad("malformed model '" + segments[1] + "' (e.g. SM-A207F)");
  auto region = normalize_region(segments[2]);
  if (!region) return bad("malformed region '" + segments[2] + "' (2-4 letters/digits, e.g. SER)");
  r.model = std::move(*model);
  r.region = std::move(*region);
  if (segments.size() == 3) {
    r.kind = route_kind::versions;
    return r;
  }
  // Check the route's shape before the version so that /firmware/M/R/V/nonsense is a 404.
  const std::size_t n = segments.size();
  // "feed.atom" is never a version ('.' is not in one).
  if (n == 4 && segments[3] == "feed.atom") {
    r.kind = route_kind::feed;
    return r;
  }
  if (n == 4)
    r.kind = route_kind::metadata;
  else if (n == 5 && segments[4] == "download")
    r.kind = route_kind::download;
  else if (n == 5 && segments[4] == "files")
    r.kind = route_kind::files;
  else if (n == 7 && segments[4] == "files" && segments[6].empty())
    r.kind = route_kind::entries;  // …/files/{member}/ (the trailing slash)
  else if (n >= 6 && segments[4] == "files")
    r.kind = route_kind::file;
  else
    return not_found(path);

  auto version = normalize_version(segments[3]);
  if (!version)
    return bad("malformed version '" + segments[3] +
               "' (latest, a PDA, or 4 parts joined by _ or %2F)");
  r.version = std::move(*version);

  if (r.kind == route_kind::file || r.kind == route_kind::entries) {
    std::string name;
    const std::size_t stop = r.kind == route_kind::entries ? 6 : n;
    for (std::size_t i = 5; i < stop; ++i) {
      if (segments[i].empty() || segments[i] == "." || segments[i] == "..")
        return bad("malformed file name");
      if (i > 5) name += '/';
      name += segments[i];
    }
    if (name.size() > 255 || std::any_of(name.begin(), name.end(),
                                         [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
      return bad("malformed file name");
    r.file_name = std::move(name);
  }

  if (r.kind == route_kind::download) {
    std::string_view q = query;
    while (!q.empty()) {
      const auto amp = q.find('&');
      const auto pair = q.substr(0, amp);
      const auto eq = pair.find('=');
      const auto key = pair.substr(0, eq);
      const auto value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      if (key == "encrypted") {
        if (value == "1" || value == "true" || value.empty())
          r.encrypted = true;
        else if (value == "0" || value == "false")
          r.encrypted = false;
        else
          return bad("encrypted takes 1 or 0");
      }
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
  }
  return r;
}

bool method_allowed(route_kind kind, std::string_view method) {
  switch (kind) {
    case route_kind::mirrors:
      return method == "GET" || method == "POST";
    case route_kind::mirror:
    case route_kind::cached:
      return method == "DELETE";
    case route_kind::login:
      return method == "GET" || method == "HEAD" || method == "POST";
    case route_kind::logout:
      return method == "POST";
    default:
      return method == "GET" || method == "HEAD";
  }
}

std::string_view allowed_methods(route_kind kind) {
  switch (kind) {
    case route_kind::mirrors:
      return "GET, POST";
    case route_kind::mirror:
    case route_kind::cached:
      return "DELETE";
    case route_kind::login:
      return "GET, HEAD, POST";
    case route_kind::logout:
      return "POST";
    default:
      return "GET, HEAD";
  }
}

std::string firmware_path(std::string_view model, std::string_view region, std::string_view version,
                          std::string_view suffix) {
  std::string out = "/firmware/";
  out += model;
  out += '/';
  out += region;
  out += '/';
  for (char c : version) out += c == '/' ? '_' : c;
  if (!suffix.empty()) {
    if (suffix.front() != '/') out += '/';
    out += suffix;
  }
  return out;
}

std::string_view route_label(route_kind kind) {
  switch (kind) {
    case route_kind::index:
      return "index";
    case route_kind::asset:
      return "asset";
    case route_kind::login:
      return "login";
    case route_kind::logout:
      return "logout";
    case route_kind::api_status:
      return "api_status";
    case route_kind::healthz:
      return "healthz";
    case route_kind::readyz:
      return "readyz";
    case route_kind::metrics:
      return "metrics";
    case route_kind::versions:
      return "versions";
    case route_kind::feed:
      return "feed";
    case route_kind::metadata:
      return "metadata";
    case route_kind::download:
      return "download";
    case route_kind::files:
      return "files";
    case route_kind::file:
      return "file";
    case route_kind::entries:
      return "entries";
    case route_kind::mirrors:
    case route_kind::mirror:
      return "mirror";
    case route_kind::cached:
      return "cache";
  }
  return "other";
}

boost::system::result<management_request, request_error> parse_management(const route& rt,
                                                                          std::string_view method,
                                                                          std::string_view body) {
  management_request rq;
  switch (rt.kind) {
    case route_kind::mirrors:
      if (method != "POST") return rq;  // list_mirrors
      {
        boost::system::error_code ec;
        auto v = boost::json::parse(body, ec);
        const auto* o = !ec && v.is_object() ? &v.as_object() : nullptr;
        const auto text = [&](const char* k) -> std::string {
          const auto* x = o ? o->if_contains(k) : nullptr;
          return x && x->is_string() ? std::string(x->as_string()) : std::string();
        };
        auto model = normalize_model(text("model"));
        auto region = normalize_region(text("region"));
        if (!model || !region)
          return request_error{api_error::bad_request,
                               R"(expected {"model":"SM-A207F","region":"SER"})"};
        rq.op = management_request::add_mirror;
        rq.model = std::move(*model);
        rq.region = std::move(*region);
      }
      return rq;
    case route_kind::mirror:
      rq.op = management_request::remove_mirror;
      rq.model = rt.model;
      rq.region = rt.region;
      return rq;
    case route_kind::cached:
      rq.op = management_request::remove_cached;
      rq.file_name = rt.file_name;
      return rq;
    default:
      return request_error{api_error::not_found, "not a management route"};
  }
}

}  // namespace fusproxy::server
