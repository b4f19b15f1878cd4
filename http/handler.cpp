#include "http/handler.hpp"

#include <algorithm>
#include <cctype>
#include <functional>

#include "http/atom_feed.hpp"
#include "http/auth.hpp"
#include "protocol/http_date.hpp"

namespace fusproxy::server {

reply error_reply(api_error e, std::string_view message, const error_fields& extra) {
  reply r;
  r.status = describe(e).status;
  r.body = error_body(e, message, extra);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

reply service_error_reply(const service_error& e, std::string_view model, std::string_view region) {
  error_fields extra;
  if (e.kind == firmware_errc::not_hosted && !e.served_version.empty()) {
    extra.emplace_back("served_version", e.served_version);
    extra.emplace_back("download_url", firmware_path(model, region, e.served_version, "download"));
  }
  if (!e.list_suffix.empty() && !e.list_version.empty())
    extra.emplace_back("list_url", firmware_path(model, region, e.list_version, e.list_suffix));
  const auto kind = api_error_of(e.kind);
  return error_reply(kind, e.message.empty() ? describe(kind).code : e.message, extra);
}

void add_freshness(header_fields& h, const freshness& f) {
  if (f.age_seconds) h.emplace_back("Age", std::to_string(f.age_seconds));
  if (f.stale) h.emplace_back("Warning", "110 - \"Response is Stale\"");
}

reply page_reply(page_answer a) {
  reply r;
  r.status = a.status;
  r.content_type = std::move(a.content_type);
  r.body = std::move(a.body);
  r.headers = std::move(a.headers);
  return r;
}

reply json_reply(std::string body, std::string cache_control, const freshness& fresh) {
  reply r;
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", std::move(cache_control));
  add_freshness(r.headers, fresh);
  return r;
}

reply feed_reply(const version_list& list, const feed_request& req) {
  feed_options o;
  o.generator_version = req.generator_version;
  const auto host = req.host;
  const bool plain_host =
      !host.empty() && host.size() <= 255 &&
      std::all_of(host.begin(), host.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
      });
  if (plain_host) o.base_url = (req.secure ? "https://" : "http://") + std::string(host);
  reply r;
  r.content_type = "application/atom+xml; charset=utf-8";
  r.body = atom_feed(list, o);
  const auto etag = "\"" + std::to_string(std::hash<std::string>{}(r.body)) + "\"";
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("Cache-Control", req.cache_control);
  r.headers.emplace_back("Vary", "Host");
  add_freshness(r.headers, list.fresh);
  if (!req.if_none_match.empty() && req.if_none_match.find(etag) != req.if_none_match.npos) {
    r.status = 304;
    r.body.clear();
  }
  return r;
}

admission admit(const request_view& req, const boost::system::result<route, request_error>& parsed,
                const admission_rules& rules) {
  const auto refuse = [](reply r) { return admission{admission::answer, std::move(r)}; };
  const bool health =
      parsed && (parsed->kind == route_kind::healthz || parsed->kind == route_kind::readyz);
  if (health) {
    if (!method_allowed(parsed->kind, req.method)) {
      auto r = error_reply(api_error::method_not_allowed, "use GET or HEAD");
      r.headers.emplace_back("Allow", std::string(allowed_methods(parsed->kind)));
      return refuse(std::move(r));
    }
    return admission{admission::health, {}};
  }
  if (rules.shutting_down) {
    auto r = error_reply(api_error::shutting_down, "the service is shutting down");
    r.close = true;
    r.headers.emplace_back("Retry-After", "1");
    return refuse(std::move(r));
  }
  // A browser signs in with HTTP Basic, the token as password (any user name), or with the
  // login form's cookie; the management routes then refuse cross-site requests (CSRF).
  const bool by_basic = !rules.token.empty() && basic_token_matches(req.authorization, rules.token);
  const bool by_cookie = !rules.token.empty() && !by_basic &&
                         session_valid(cookie_value(req.cookie, session_cookie_name).value_or(""),
                                       rules.token, rules.now);
  const bool safe_method = req.method == "GET" || req.method == "HEAD";
  if ((by_basic || by_cookie) && parsed && !safe_method &&
      cross_site_request(req.origin, req.sec_fetch_site, req.host))
    return refuse(error_reply(api_error::forbidden, "cross-site request refused"));
  // The page's assets and its sign-in/out need no token.
  const bool open_route =
      parsed && (parsed->kind == route_kind::asset || parsed->kind == route_kind::login ||
                 parsed->kind == route_kind::logout);
  if (!rules.token.empty() && !by_basic && !by_cookie && !open_route &&
      !bearer_token_matches(req.authorization, rules.token)) {
    auto r = error_reply(api_error::unauthorized, "missing or wrong bearer token");
    // A browser asking for the page gets the sign-in form with the 401; clients, JSON.
    if (parsed && parsed->kind == route_kind::index &&
        req.accept.find("text/html") != std::string_view::npos)
      r = page_reply(sign_in_required_answer());
    // One challenge per header line: browsers (Chromium) read a WWW-Authenticate line as a
    // single challenge, so "Bearer ..., Basic ..." on one line never showed their prompt.
    r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"fusproxy\", charset=\"UTF-8\"");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"fusproxy\"");
    return refuse(std::move(r));
  }
  std::uint32_t retry_after = 0;
  if (rules.rate_allows && !rules.rate_allows(retry_after)) {
    auto r = error_reply(api_error::rate_limited, "too many requests from this address");
    r.headers.emplace_back("Retry-After", std::to_string(retry_after));
    return refuse(std::move(r));
  }
  if (!parsed) return refuse(error_reply(parsed.error().kind, parsed.error().message));
  if (!method_allowed(parsed->kind, req.method)) {
    auto r = error_reply(api_error::method_not_allowed,
                         "method " + std::string(req.method) + " not allowed");
    r.headers.emplace_back("Allow", std::string(allowed_methods(parsed->kind)));
    return refuse(std::move(r));
  }
  return admission{admission::route_ok, {}};
}

std::string safe_filename(std::string_view name) {
  std::string out;
  for (unsigned char c : name) out += (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '_' : c;
  return out.empty() ? "download" : out;
}

std::variant<reply, stream_plan> decide_download(const request_view& req,
                                                 const representation_view& rep,
                                                 std::string_view cache_control) {
  http::request_conditions cond;
  cond.get = req.method == "GET";
  cond.head = req.method == "HEAD";
  cond.if_match = req.if_match;
  cond.if_none_match = req.if_none_match;
  cond.if_modified_since = req.if_modified_since;
  cond.if_unmodified_since = req.if_unmodified_since;
  cond.if_range = req.if_range;
  cond.range = req.range;
  if (!rep.size_known) cond.range = cond.if_range = std::nullopt;  // chunked: the whole body
  const http::validators val{rep.etag, rep.last_modified};
  const auto plan = http::plan_response(cond, val, rep.size);

  header_fields validators = {
      {"ETag", std::string(rep.etag)},
      {"Last-Modified", http_date::format_http_date(rep.last_modified)},
      {"Cache-Control", std::string(cache_control)},
  };
  switch (plan.kind) {
    case http::answer::not_modified: {
      reply r;
      r.status = 304;
      r.headers = std::move(validators);
      return r;
    }
    case http::answer::precondition_failed:
      return error_reply(api_error::precondition_failed, "precondition failed");
    case http::answer::range_not_satisfiable: {
      auto r = error_reply(api_error::range_not_satisfiable,
                           "range not satisfiable (size " + std::to_string(rep.size) + ")");
      r.headers.emplace_back("Content-Range", http::unsatisfied_content_range(rep.size));
      r.headers.emplace_back("Accept-Ranges", "bytes");
      return r;
    }
    case http::answer::full:
    case http::answer::partial:
      break;
  }
  const bool partial = plan.kind == http::answer::partial;
  stream_plan out;
  out.status = partial ? 206 : 200;
  out.first = partial ? plan.range.first : 0;
  out.length = partial ? plan.range.length() : rep.size;
  out.headers.emplace_back("Content-Type", std::string(rep.content_type));
  out.headers.emplace_back("Content-Disposition",
                           "attachment; filename=\"" + safe_filename(rep.filename) + "\"");
  out.headers.emplace_back("Accept-Ranges", "bytes");
  for (auto& h : validators) out.headers.push_back(std::move(h));
  if (partial) out.headers.emplace_back("Content-Range", http::content_range(plan.range, rep.size));
  add_freshness(out.headers, rep.fresh);
  return out;
}

}  // namespace fusproxy::server
