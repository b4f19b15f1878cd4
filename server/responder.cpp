#include "server/responder.hpp"

#include <spdlog/logger.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <ctime>
#include <optional>

#include "http/http_range.hpp"
#include "server/body_sinks.hpp"
#include "server/client_watch.hpp"

namespace fusproxy::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

constexpr std::string_view server_name = "fusproxy/" FUSPROXY_VERSION;

template <class Res>
void set_common_headers(Res& res, const std::string& request_id) {
  res.set(bhttp::field::server, server_name);
  res.set(bhttp::field::date, http::format_http_date(std::time(nullptr)));
  res.set("X-Request-Id", request_id);
}

}  // namespace

responder::responder(std::chrono::seconds idle_timeout, std::shared_ptr<spdlog::logger> log,
                     std::shared_ptr<const lifecycle> life, std::shared_ptr<download_slots> slots)
    : idle_timeout_(idle_timeout),
      log_(std::move(log)),
      life_(std::move(life)),
      slots_(std::move(slots)) {}

net::awaitable<sent_response> responder::send_reply(connection& conn, const client_request& req,
                                                    const std::string& request_id, reply r) {
  sent_response out;
  out.keep_alive = req.keep_alive() && !r.close && !life_->shutting_down();
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), req.version()};
  set_common_headers(res, request_id);
  const bool no_body = r.status == 304 || r.status == 204;
  if (!no_body) res.set(bhttp::field::content_type, r.content_type);
  for (auto& [k, v] : r.headers) {
    // These may repeat (one challenge or one cookie a line); any other is set once.
    if (beast::iequals(k, "WWW-Authenticate") || beast::iequals(k, "Set-Cookie"))
      res.insert(k, v);
    else
      res.set(k, v);
  }
  const auto size = r.body.size();
  res.body() = std::move(r.body);
  res.keep_alive(out.keep_alive);
  if (!no_body) res.content_length(size);
  if (req.method() == bhttp::verb::head || no_body) res.body().clear();
  conn.stream.expires_after(idle_timeout_);
  auto [ec, n] =
      co_await conn.with_stream([&](auto& s) { return bhttp::async_write(s, res, use_tuple); });
  out.status = r.status;
  out.bytes = res.body().size();
  if (ec) {
    out.keep_alive = false;
    out.cut = true;
  }
  co_return out;
}

net::awaitable<void> responder::send_bare(connection& conn, reply r) {
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), 11};
  res.set(bhttp::field::server, server_name);
  res.set(bhttp::field::content_type, r.content_type);
  res.set(bhttp::field::connection, "close");
  res.body() = std::move(r.body);
  res.prepare_payload();
  conn.stream.expires_after(idle_timeout_);
  co_await conn.with_stream([&](auto& s) { return bhttp::async_write(s, res, use_tuple); });
}

net::awaitable<sent_response> responder::send_download(connection& conn, const client_request& req,
                                                       const request_context& ctx,
                                                       const download_representation& rep,
                                                       const stream_plan& plan, std::string build) {
  const bool head = req.method() == bhttp::verb::head;
  // Slots are only taken by responses that move bytes; over a cap the download waits.
  const bool takes_slot = !head && (plan.length > 0 || !rep.size_known);
  std::optional<download_slots::held_slot> slot;
  if (takes_slot) {
    const auto taken = co_await slots_->take(conn, ctx.client_ip);
    if (taken != download_queue::outcome::granted) {
      // A client that went away gets nothing: the write fails and the connection ends.
      reply refusal = slots_->refusal(taken, life_->shutting_down());
      co_return co_await send_reply(conn, req, ctx.request_id, std::move(refusal));
    }
    slot.emplace(*slots_, ctx.client_ip, std::move(build));
  }

  sent_response out;
  out.status = plan.status;
  out.keep_alive = req.keep_alive() && !life_->shutting_down();
  bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(plan.status), req.version()};
  set_common_headers(res, ctx.request_id);
  for (const auto& [k, v] : plan.headers) res.set(k, v);
  if (rep.size_known)
    res.content_length(plan.length);
  else
    res.chunked(true);  // an LZ4 image whose size no frame header or decode told yet
  res.keep_alive(out.keep_alive);

  bhttp::response_serializer<bhttp::empty_body> serializer{res};
  conn.stream.expires_after(idle_timeout_);
  auto [ec, n] = co_await conn.with_stream(
      [&](auto& s) { return bhttp::async_write_header(s, serializer, use_tuple); });
  if (ec) {
    out.cut = true;
    out.keep_alive = false;
    co_return out;
  }
  if (head || (plan.length == 0 && rep.size_known)) co_return out;
  if (!rep.size_known) co_return co_await send_chunked(conn, rep, ctx.request_id, std::move(out));
  co_return co_await send_body(conn, rep, plan, ctx.request_id, std::move(out));
}

net::awaitable<sent_response> responder::send_body(connection& conn,
                                                   const download_representation& rep,
                                                   const stream_plan& plan, const std::string& rid,
                                                   sent_response out) {
  stream_sink sink(conn, plan.length, idle_timeout_);
  boost::system::error_code body_ec;
  try {
    auto body_call = rep.body->write_range(plan.first, plan.length, sink);
    body_ec = co_await unless_client_leaves(conn, std::move(body_call));
  } catch (const std::exception& e) {
    log_->error("[{}] body source threw: {}", rid, e.what());
    body_ec = make_error_code(boost::system::errc::io_error);
  }
  out.bytes = sink.written();
  if (body_ec || sink.remaining() > 0) {
    log_->warn("[{}] body ended after {} of {} bytes: {}", rid, sink.written(), plan.length,
               body_ec ? body_ec.message() : "short body");
    out.cut = true;
    out.keep_alive = false;
    conn.cut();
  }
  co_return out;
}

net::awaitable<sent_response> responder::send_chunked(connection& conn,
                                                      const download_representation& rep,
                                                      const std::string& rid, sent_response out) {
  chunked_sink sink(conn, idle_timeout_);
  boost::system::error_code body_ec;
  try {
    auto body_call = rep.body->write_range(0, unknown_length, sink);
    body_ec = co_await unless_client_leaves(conn, std::move(body_call));
    if (!body_ec) body_ec = co_await sink.finish();
  } catch (const std::exception& e) {
    log_->error("[{}] body source threw: {}", rid, e.what());
    body_ec = make_error_code(boost::system::errc::io_error);
  }
  out.bytes = sink.written();
  if (body_ec) {
    log_->warn("[{}] chunked body ended after {} bytes: {}", rid, sink.written(),
               body_ec.message());
    out.cut = true;
    out.keep_alive = false;
    conn.cut();
  }
  co_return out;
}

}  // namespace fusproxy::server
