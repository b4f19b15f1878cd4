#include "server/request_handler.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <optional>
#include <random>
#include <variant>

#include "http/auth.hpp"
#include "http/client_address.hpp"
#include "http/handler.hpp"
#include "http/json_views.hpp"
#include "http/status_page.hpp"
#include "obs/logging.hpp"
#include "server/client_watch.hpp"

namespace fusproxy::server {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using steady = std::chrono::steady_clock;

// The parts of a request the pure decisions (http/handler.hpp) look at.
request_view request_view_of(const client_request& req) {
  const auto header = [&](bhttp::field f) -> std::optional<std::string_view> {
    const auto it = req.find(f);
    if (it == req.end()) return std::nullopt;
    return it->value();
  };
  request_view v;
  v.method = req.method_string();
  v.authorization = req[bhttp::field::authorization];
  v.origin = req[bhttp::field::origin];
  v.sec_fetch_site = req["Sec-Fetch-Site"];
  v.host = req[bhttp::field::host];
  v.cookie = req[bhttp::field::cookie];
  v.accept = req[bhttp::field::accept];
  v.if_match = header(bhttp::field::if_match);
  v.if_none_match = header(bhttp::field::if_none_match);
  v.if_modified_since = header(bhttp::field::if_modified_since);
  v.if_unmodified_since = header(bhttp::field::if_unmodified_since);
  v.if_range = header(bhttp::field::if_range);
  v.range = header(bhttp::field::range);
  return v;
}

reply healthz_reply() {
  reply r;
  r.body = R"({"status":"ok"})";
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace

request_handler::request_handler(std::shared_ptr<const config::settings> settings,
                                 firmware_service& firmware, std::shared_ptr<spdlog::logger> log,
                                 std::shared_ptr<server_metrics> metrics,
                                 std::shared_ptr<lifecycle> life,
                                 std::shared_ptr<responder> respond,
                                 std::shared_ptr<const download_slots> slots)
    : cfg_(std::move(settings)),
      firmware_(firmware),
      log_(std::move(log)),
      metrics_(std::move(metrics)),
      life_(std::move(life)),
      respond_(std::move(respond)),
      slots_(std::move(slots)),
      limiter_(cfg_->rate_limit) {
  std::random_device rd;
  char prefix[16];
  std::snprintf(prefix, sizeof prefix, "%08x", rd());
  request_id_prefix_ = prefix;
}

net::awaitable<bool> request_handler::handle(connection& conn, client_request& req) {
  lifecycle::request_scope in_flight(*life_);
  const auto begun = steady::now();
  const auto incoming_id = req["X-Request-Id"];
  const std::string request_id =
      acceptable_request_id(incoming_id) ? std::string(incoming_id) : make_request_id();
  request_context ctx{request_id, request_client(conn, req)};

  const auto parsed = parse_target(req.target());
  std::string_view label = parsed ? route_label(parsed->kind) : "-";
  sent_response out;
  bool failed = false;
  try {
    out = co_await dispatch(conn, req, parsed, ctx);
  } catch (const std::exception& e) {
    // A service that threw before any byte of the answer was written (the streaming path
    // catches its own): a bug, answered 500.
    log_->error("[{}] request failed: {}", request_id, e.what());
    failed = true;
  }
  if (failed) {
    {
      // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
      reply tmp = error_reply(api_error::internal_error, "internal error");
      out = co_await respond_->send_reply(conn, req, request_id, std::move(tmp));
    }
    out.keep_alive = false;
  }
  const double seconds = std::chrono::duration<double>(steady::now() - begun).count();
  metrics_->count_request(label, out.status, out.bytes, seconds);
  if (out.cut) ++metrics_->responses_cut;
  access_record rec;
  rec.request_id = request_id;
  rec.client_ip = ctx.client_ip;
  rec.method = req.method_string();
  rec.target = req.target();
  rec.route = label;
  rec.status = out.status;
  rec.bytes = out.bytes;
  rec.duration_ms = seconds * 1000;
  rec.user_agent = req[bhttp::field::user_agent];
  rec.cut = out.cut;
  log_access(*log_, cfg_->log_format, rec);
  co_return out.keep_alive;
}

net::awaitable<sent_response> request_handler::dispatch(connection& conn, client_request& req,
                                                        const parsed_route& parsed,
                                                        const request_context& ctx) {
  admission_rules rules;
  rules.token = cfg_->token;
  rules.shutting_down = life_->shutting_down();
  rules.now = std::time(nullptr);
  rules.rate_allows = [&](std::uint32_t& retry_after) {
    if (limiter_.allow(ctx.client_ip, steady::now(), retry_after)) return true;
    ++metrics_->rate_limited;
    return false;
  };
  const auto admitted = admit(request_view_of(req), parsed, rules);
  if (admitted.kind == admission::answer) {
    reply refusal = admitted.refusal;
    co_return co_await respond_->send_reply(conn, req, ctx.request_id, std::move(refusal));
  }
  const route& rt = *parsed;
  if (rt.kind == route_kind::download || rt.kind == route_kind::file)
    co_return co_await download(conn, req, rt, ctx);
  reply answer = co_await route_reply(conn, req, rt, ctx);
  co_return co_await respond_->send_reply(conn, req, ctx.request_id, std::move(answer));
}

// Every route but the downloads: a buffered reply.
net::awaitable<reply> request_handler::route_reply(connection& conn, const client_request& req,
                                                   const route& rt, const request_context& ctx) {
  switch (rt.kind) {
    case route_kind::healthz:
      co_return healthz_reply();
    case route_kind::readyz:
      co_return co_await readyz(conn);
    case route_kind::metrics:
      co_return co_await metrics_page(conn);
    case route_kind::index:
    case route_kind::asset:
      co_return page_file(req, rt);
    case route_kind::login:
    case route_kind::logout:
      co_return sign_in(conn, req, rt);
    case route_kind::api_status:
      co_return co_await api_status(conn);
    case route_kind::versions: {
      auto call = firmware_.versions(rt.model, rt.region, ctx);
      co_return co_await service_answer(conn, rt, std::move(call), [&](const version_list& v) {
        return json_reply(versions_json(v), cache_control_short(), v.fresh);
      });
    }
    case route_kind::feed:
      co_return co_await feed(conn, req, rt, ctx);
    case route_kind::metadata: {
      auto call = firmware_.metadata(rt.model, rt.region, rt.version, ctx);
      co_return co_await service_answer(conn, rt, std::move(call), [&](const firmware_metadata& m) {
        return json_reply(metadata_json(m), metadata_cache_control(rt), m.fresh);
      });
    }
    case route_kind::files: {
      auto call = firmware_.files(rt.model, rt.region, rt.version, ctx);
      co_return co_await service_answer(conn, rt, std::move(call), [&](const auto& members) {
        return json_reply(files_json(members), metadata_cache_control(rt));
      });
    }
    case route_kind::entries: {
      auto call = firmware_.entries(rt.model, rt.region, rt.version, rt.file_name, ctx);
      co_return co_await service_answer(conn, rt, std::move(call), [&](const auto& entries) {
        return json_reply(entries_json(entries), metadata_cache_control(rt));
      });
    }
    case route_kind::mirrors:
    case route_kind::mirror:
    case route_kind::cached:
      co_return co_await management(conn, req, rt);
    case route_kind::download:
    case route_kind::file:
      break;  // streamed: download()
  }
  co_return error_reply(api_error::not_found, "no route");
}

template <class T, class ToReply>
net::awaitable<reply> request_handler::service_answer(connection& conn, const route& rt,
                                                      net::awaitable<service_result<T>> call,
                                                      ToReply to_reply) {
  auto res = co_await unless_client_leaves(conn, std::move(call));
  if (!res) co_return service_error_reply(res.error(), rt.model, rt.region);
  co_return to_reply(*res);
}

net::awaitable<reply> request_handler::readyz(connection& conn) {
  if (life_->shutting_down()) {
    auto r = error_reply(api_error::shutting_down, "the service is shutting down");
    r.close = true;
    co_return r;
  }
  // The service answers for what it owns, the cache directory included.
  auto call = firmware_.ready();
  const auto service = co_await unless_client_leaves(conn, std::move(call));
  if (!service.ready) co_return error_reply(api_error::not_ready, service.why);
  reply r;
  r.body = R"({"status":"ready"})";
  r.headers.emplace_back("Cache-Control", "no-store");
  co_return r;
}

net::awaitable<reply> request_handler::metrics_page(connection& conn) {
  // The service sets its gauges first (at most a few ms: see service_thread).
  auto refresh = firmware_.refresh_metrics();
  co_await unless_client_leaves(conn, std::move(refresh));
  reply r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_->registry.render();
  r.headers.emplace_back("Cache-Control", "no-store");
  co_return r;
}

net::awaitable<reply> request_handler::api_status(connection& conn) {
  status_inputs in;
  in.settings = cfg_.get();
  in.version = FUSPROXY_VERSION;
  in.started_at = started_wall_;
  in.uptime_seconds =
      std::chrono::duration_cast<std::chrono::seconds>(steady::now() - started_).count();
  in.shutting_down = life_->shutting_down();
  in.connections = metrics_->connections_active.value();
  in.requests_in_flight = metrics_->requests_in_flight.value();
  in.downloads_active = metrics_->downloads_active.value();
  in.downloads_queued = metrics_->downloads_queued.value();
  in.bytes_served = metrics_->bytes_served.value();
  in.clients_by_build = slots_->streaming_by_build();
  auto call = firmware_.status_json();
  in.firmware = co_await unless_client_leaves(conn, std::move(call));
  co_return json_reply(boost::json::serialize(status_json(in)), "no-store");
}

net::awaitable<reply> request_handler::feed(connection& conn, const client_request& req,
                                            const route& rt, const request_context& ctx) {
  auto call = firmware_.versions(rt.model, rt.region, ctx);
  co_return co_await service_answer(conn, rt, std::move(call), [&](const version_list& list) {
    feed_request in;
    in.host = req[bhttp::field::host];
    in.secure = conn.tls != nullptr;
    in.if_none_match = req[bhttp::field::if_none_match];
    in.cache_control = cache_control_short();
    in.generator_version = FUSPROXY_VERSION;
    return feed_reply(list, in);
  });
}

net::awaitable<reply> request_handler::management(connection& conn, const client_request& req,
                                                  const route& rt) {
  auto request = parse_management(rt, req.method_string(), req.body());
  if (!request) co_return error_reply(request.error().kind, request.error().message);
  auto call = firmware_.manage(std::move(*request));
  co_return co_await service_answer(conn, rt, std::move(call), [](const boost::json::value& v) {
    return json_reply(boost::json::serialize(v), "no-store");
  });
}

// …/download and …/files/{name}: the representation from the service, conditionals and
// Range decided purely, then the responder streams the plan.
net::awaitable<sent_response> request_handler::download(connection& conn, client_request& req,
                                                        const route& rt,
                                                        const request_context& ctx) {
  const auto variant = rt.kind == route_kind::file
                           ? download_variant::member
                           : (rt.encrypted ? download_variant::encrypted : download_variant::plain);
  download_request dreq{rt.model, rt.region, rt.version, variant, rt.file_name};
  auto open_call = firmware_.open_download(dreq, ctx);
  auto opened = co_await unless_client_leaves(conn, std::move(open_call));
  if (!opened) {
    // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
    reply tmp = service_error_reply(opened.error(), rt.model, rt.region);
    co_return co_await respond_->send_reply(conn, req, ctx.request_id, std::move(tmp));
  }
  const auto& rep = *opened;
  const representation_view facts{rep.size,     rep.etag,  rep.last_modified, rep.content_type,
                                  rep.filename, rep.fresh, rep.size_known};
  const auto decided = decide_download(
      request_view_of(req), facts,
      rt.version.is_latest() ? cache_control_short() : "public, max-age=31536000, immutable");
  if (const auto* r = std::get_if<reply>(&decided)) {
    reply tmp = *r;
    co_return co_await respond_->send_reply(conn, req, ctx.request_id, std::move(tmp));
  }
  auto build = build_key(rt.model, rt.region, rep.version);
  co_return co_await respond_->send_download(conn, req, ctx, rep, std::get<stream_plan>(decided),
                                             std::move(build));
}

reply request_handler::page_file(const client_request& req, const route& rt) const {
  auto a = page_file_answer(rt.kind == route_kind::index ? "index.html" : rt.file_name,
                            req[bhttp::field::if_none_match], !cfg_->token.empty());
  return a ? page_reply(std::move(*a)) : error_reply(api_error::not_found, "no such file");
}

reply request_handler::sign_in(const connection& conn, const client_request& req,
                               const route& rt) const {
  sign_in_request in;
  in.method = req.method_string();
  in.body = req.body();
  in.token = cfg_->token;
  in.origin = req[bhttp::field::origin];
  in.sec_fetch_site = req["Sec-Fetch-Site"];
  in.host = req[bhttp::field::host];
  in.secure = conn.tls != nullptr;
  in.now = std::time(nullptr);
  return page_reply(rt.kind == route_kind::login ? sign_in_answer(in) : sign_out_answer(in));
}

// The client a request's limits and access log count: the peer, or behind a
// --trusted-proxy the address its X-Forwarded-For names.
std::string request_handler::request_client(const connection& conn,
                                            const client_request& req) const {
  if (cfg_->trusted_proxies.empty()) return conn.client_ip;
  std::string forwarded_for;  // several header lines make one list
  const auto [first, last] = req.equal_range("X-Forwarded-For");
  for (auto it = first; it != last; ++it) {
    if (!forwarded_for.empty()) forwarded_for += ',';
    forwarded_for.append(it->value());
  }
  return client_address(conn.client_ip, forwarded_for, cfg_->trusted_proxies);
}

std::string request_handler::make_request_id() {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s-%llx", request_id_prefix_.c_str(),
                static_cast<unsigned long long>(next_request_++));
  return buf;
}

// Metadata and member lists of a named build never change; `latest`'s may.
std::string request_handler::metadata_cache_control(const route& rt) const {
  return rt.version.is_latest() ? cache_control_short() : "public, max-age=3600";
}

std::string request_handler::cache_control_short() const {
  return "public, max-age=" + std::to_string(std::min<std::uint32_t>(cfg_->metadata_ttl, 60));
}

}  // namespace fusproxy::server
