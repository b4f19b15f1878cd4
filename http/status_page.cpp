#include "http/status_page.hpp"

#include "protocol/http_date.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <map>

#include "http/api_error.hpp"
#include "http/auth.hpp"
#include "http/embedded_file.hpp"
#include "http/http_range.hpp"

namespace fusproxy::server {
namespace {

namespace json = boost::json;

json::object config_object(const config::settings& s) {
  json::object c;
  c["listen"] = s.listen.host + ":" + std::to_string(s.listen.port);
  c["dialect"] = s.dialect == config::dialect::smart2 ? "smart2" : "legacy";
  c["fus_url"] = s.fus_url;
  c["cloud_url"] = s.cloud_url;
  c["fota_url"] = s.fota_url;
  // Named key sets are public; custom keys are secrets.
  c["legacy_keys"] = s.legacy_keys.size() > 4 ? "***custom***" : s.legacy_keys;
  c["imei_set"] = s.imei_by_model.size() + (s.default_imei.empty() ? 0 : 1);
  c["connections"] = s.connections;
  c["connections_start"] = std::min(s.connections_start, s.connections);
  c["cache_dir"] = s.cache_dir;
  c["cache_max_bytes"] = s.cache_max_bytes;
  c["metadata_ttl"] = s.metadata_ttl;
  c["upstream_deadline"] = s.upstream_deadline;
  c["auth"] = !s.token.empty();  // the token itself never leaves the process
  c["tls"] = !s.tls_cert.empty();
  c["log_format"] = s.log_format == config::log_format::json ? "json" : "text";
  c["demo"] = s.demo;
  c["rate_limit"] = s.rate_limit;
  c["max_connections"] = s.max_connections;
  c["max_downloads_per_client"] = s.max_downloads_per_client;
  c["max_downloads"] = s.max_downloads;
  c["queue_timeout"] = s.queue_timeout;
  c["header_timeout"] = s.header_timeout;
  c["idle_timeout"] = s.idle_timeout;
  c["shutdown_grace"] = s.shutdown_grace;
  return c;
}

}  // namespace

std::string build_key(std::string_view model, std::string_view region, std::string_view version) {
  std::string k(model);
  k.append("/").append(region).append("/").append(version);
  return k;
}

json::object status_json(const status_inputs& in) {
  const json::object& firmware = in.firmware;
  const auto lift = [&](std::initializer_list<const char*> names, json::value fallback) {
    for (const char* n : names)
      if (const auto* v = firmware.if_contains(n)) return *v;
    return fallback;
  };

  json::object service;
  service["name"] = "fusproxy";
  service["version"] = in.version;
  service["started_at"] = http_date::iso8601_utc(in.started_at);
  service["uptime_seconds"] = in.uptime_seconds;
  service["shutting_down"] = in.shutting_down;
  if (in.settings) service["config"] = config_object(*in.settings);

  json::object http;
  http["connections"] = in.connections;
  http["requests_in_flight"] = in.requests_in_flight;
  http["downloads_active"] = in.downloads_active;
  http["downloads_queued"] = in.downloads_queued;
  http["bytes_served"] = in.bytes_served;

  // The pipeline's jobs (firmware.downloads: size, present, bytes_per_second, state, …)
  // become "downloads" (those still fetching) in the documented shape, and mark "builds".
  const auto text = [](const json::object& o, const char* k) -> std::string {
    const auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  const auto number = [](const json::object& o, const char* k) -> double {
    const auto* v = o.if_contains(k);
    if (!v) return 0;
    if (v->is_double()) return v->as_double();
    if (v->is_uint64()) return static_cast<double>(v->as_uint64());
    if (v->is_int64()) return static_cast<double>(v->as_int64());
    return 0;
  };
  const auto clients_of = [&](const std::string& key) -> std::int64_t {
    const auto it = in.clients_by_build.find(key);
    return it == in.clients_by_build.end() ? 0 : it->second;
  };
  json::array downloads;
  std::map<std::string, const json::object*> job_by_build;
  if (const auto* jobs = firmware.if_contains("downloads"); jobs && jobs->is_array()) {
    for (const auto& j : jobs->as_array()) {
      if (!j.is_object()) continue;
      const auto& job = j.as_object();
      const auto key = build_key(text(job, "model"), text(job, "region"), text(job, "version"));
      job_by_build[key] = &job;
      const auto state = text(job, "state");
      if (state == "verified" || state == "failed" || state == "crc_mismatch") continue;
      if (job.if_contains("bytes_done")) {  // already in the documented shape
        downloads.push_back(job);
        continue;
      }
      json::object d;
      d["model"] = text(job, "model");
      d["region"] = text(job, "region");
      d["version"] = text(job, "version");
      d["bytes_done"] = static_cast<std::uint64_t>(number(job, "present"));
      d["bytes_total"] = static_cast<std::uint64_t>(number(job, "size"));
      d["rate"] = number(job, "bytes_per_second");
      d["clients"] = clients_of(key);
      d["state"] = state;
      d["connections"] = static_cast<std::uint64_t>(number(job, "connections"));
      d["connections_target"] = static_cast<std::uint64_t>(number(job, "connections_target"));
      d["connections_max"] = static_cast<std::uint64_t>(number(job, "connections_max"));
      d["hedges"] = static_cast<std::uint64_t>(number(job, "hedges"));
      if (const auto* conns = job.if_contains("upstream_connections"); conns && conns->is_array()) {
        json::array rates;
        for (const auto& c : conns->as_array())
          if (c.is_object()) rates.push_back(number(c.as_object(), "bytes_per_second"));
        d["connection_rates"] = std::move(rates);
      }
      d["retries"] = static_cast<std::uint64_t>(number(job, "retries"));
      downloads.push_back(std::move(d));
    }
  }
  auto builds = lift({"builds", "known_builds"}, json::array{});
  if (builds.is_array())
    for (auto& b : builds.as_array()) {
      if (!b.is_object()) continue;
      auto& o = b.as_object();
      const auto key = build_key(text(o, "model"), text(o, "region"), text(o, "version"));
      const auto it = job_by_build.find(key);
      const auto state = it == job_by_build.end() ? std::string() : text(*it->second, "state");
      if (!o.contains("cached")) o["cached"] = state == "verified";
      if (!o.contains("state")) o["state"] = state.empty() ? "metadata" : state;
      o["clients"] = clients_of(key);
    }

  json::object out;
  out["service"] = std::move(service);
  out["http"] = std::move(http);
  out["upstream"] = lift({"upstream", "resolver"}, json::object{});
  out["builds"] = std::move(builds);
  out["downloads"] = std::move(downloads);
  out["firmware"] = std::move(firmware);
  return out;
}

namespace {

const embedded_file* page_file(std::string_view name) {
  for (const auto& f : status_page_files())
    if (f.name == name) return &f;
  return nullptr;
}

std::string_view content_type_of(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".png")) return "image/png";
  if (name.ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

// The page's scripts and styles are its own files: nothing inline, nothing from elsewhere.
void add_page_headers(page_answer& a) {
  a.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src 'self'; style-src 'self'; "
                         "img-src 'self'; connect-src 'self'; form-action 'self'; "
                         "frame-ancestors 'none'; base-uri 'none'");
  a.headers.emplace_back("X-Content-Type-Options", "nosniff");
  a.headers.emplace_back("Referrer-Policy", "same-origin");
}

page_answer login_form(unsigned status, std::string_view message) {
  page_answer a;
  a.status = status;
  const auto* f = page_file("login.html");
  a.body = f ? std::string(f->bytes) : std::string("<!doctype html><title>Sign in</title>");
  constexpr std::string_view marker = "<!--message-->";
  if (const auto at = a.body.find(marker); at != std::string::npos)
    a.body.replace(at, marker.size(),
                   message.empty() ? std::string()
                                   : "<p class=\"err\" role=\"alert\">" + std::string(message) +
                                         "</p>");  // fixed texts only: nothing to escape
  a.headers.emplace_back("Cache-Control", "no-store");
  add_page_headers(a);
  return a;
}

page_answer see_other(std::string_view location) {
  page_answer a;
  a.status = 303;
  a.content_type = "text/plain; charset=utf-8";
  a.headers.emplace_back("Location", std::string(location));
  a.headers.emplace_back("Cache-Control", "no-store");
  return a;
}

page_answer cross_site_refused() {
  page_answer a;
  a.status = 403;
  a.content_type = "application/json";
  a.body = error_body(api_error::forbidden, "cross-site request refused");
  a.headers.emplace_back("Cache-Control", "no-store");
  return a;
}

}  // namespace

std::optional<page_answer> page_file_answer(std::string_view name, std::string_view if_none_match,
                                            bool private_cache) {
  const auto* f = name == "login.html" ? nullptr : page_file(name);
  if (!f) return std::nullopt;
  page_answer a;
  a.content_type = content_type_of(name);
  const auto opaque = f->sha256.substr(0, 32);
  a.headers.emplace_back("ETag", "\"" + std::string(opaque) + "\"");
  a.headers.emplace_back("Cache-Control", private_cache ? "private, no-cache" : "no-cache");
  if (name.ends_with(".html"))
    add_page_headers(a);
  else
    a.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (!if_none_match.empty() &&
      http::etag_list_matches(if_none_match, http::entity_tag{false, opaque}, false)) {
    a.status = 304;
    return a;
  }
  a.body = f->bytes;
  return a;
}

page_answer sign_in_answer(const sign_in_request& r) {
  if (r.token.empty()) return see_other("./");
  if (r.method != "POST") return login_form(200, "");
  if (cross_site_request(r.origin, r.sec_fetch_site, r.host)) return cross_site_refused();
  const auto presented = form_field(r.body, "token");
  // The same constant-time comparison as the bearer token.
  if (!presented || !token_matches(*presented, r.token))
    return login_form(401, "That token is not right. Try again.");
  auto a = see_other("./");
  a.headers.emplace_back("Set-Cookie", session_set_cookie(r.token, r.now, r.secure));
  return a;
}

page_answer sign_out_answer(const sign_in_request& r) {
  if (cross_site_request(r.origin, r.sec_fetch_site, r.host)) return cross_site_refused();
  auto a = see_other(r.token.empty() ? "./" : "login");
  a.headers.emplace_back("Set-Cookie", session_clear_cookie(r.secure));
  return a;
}

page_answer sign_in_required_answer() {
  return login_form(401, "");
}

}  // namespace fusproxy::server
