// fus-sim's network side: a Beast HTTP/1.1 server, one C++20 coroutine per connection,
// keep-alive, timeouts; answers come from server_core (sans I/O). Download bodies are
// generated chunk by chunk into one per-connection buffer and written raw after a
// hand-serialised header, which is what makes >= 1.5 GB/s on one connection possible.
#include <cstdio>
#include <list>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include "sim/server_core.hpp"
#include "sim/simulator.hpp"

namespace fusproxy::sim {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t body_chunk = 1 << 20;  // big writes: few syscalls per GB
constexpr auto idle_timeout = 60s;           // keep-alive connection without a request
constexpr auto write_timeout = 60s;          // one chunk not taken by the client

std::string serialize_head(unsigned status,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           std::uint64_t content_length, bool keep_alive) {
  std::string h;
  h.reserve(512);
  h += "HTTP/1.1 ";
  h += std::to_string(status);
  h += ' ';
  h += http::obsolete_reason(static_cast<http::status>(status));
  h += "\r\nServer: fus-sim\r\n";
  for (const auto& [name, value] : headers) {
    h += name;
    h += ": ";
    h += value;
    h += "\r\n";
  }
  h += "Content-Length: ";
  h += std::to_string(content_length);
  h += keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  return h;
}

// Paces one connection's body at `bps` bytes per second (a token bucket with a small burst),
// re-reading the rate before every chunk so a run-time change applies at once.
class pacer {
 public:
  std::size_t chunk_for(std::uint64_t bps) const {
    if (bps == 0) return body_chunk;
    return static_cast<std::size_t>(std::clamp<std::uint64_t>(bps / 20, 4096, body_chunk));
  }
  // How long to wait before sending the next `n` bytes: a chunk goes out when the bucket
  // holds it, so the rate over the body is exactly `bps` (no initial burst).
  std::chrono::steady_clock::duration wait(std::uint64_t bps, std::uint64_t n) {
    const auto now = std::chrono::steady_clock::now();
    if (bps != rate_) {
      rate_ = bps;
      start_ = now;
      sent_ = 0;
    }
    if (rate_ == 0) return {};
    const auto due = start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                  std::chrono::duration<double>(double(sent_ + n) / double(rate_)));
    if (due > now) return due - now;
    if (now - due > 200ms) {  // the client fell behind: no catch-up burst
      start_ = now - std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(double(n) / double(rate_)));
      sent_ = 0;
    }
    return {};
  }
  void sent(std::uint64_t n) { sent_ += n; }

 private:
  std::uint64_t rate_ = 0;
  std::chrono::steady_clock::time_point start_{};
  std::uint64_t sent_ = 0;
};

}  // namespace

bool is_loopback_host(std::string_view host) {
  if (host == "localhost") return true;
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  boost::system::error_code ec;
  const auto address = net::ip::make_address(h, ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6()).is_loopback();
  return address.is_loopback();
}

struct simulator::impl : std::enable_shared_from_this<impl> {
  impl(net::io_context& context, const simulator_options& options)
      : ioc(context), core(options), acceptor(net::make_strand(context)) {}

  net::io_context& ioc;
  server_core core;
  tcp::acceptor acceptor;
  std::string host;
  std::uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::mutex connections_mutex;
  std::list<std::weak_ptr<beast::tcp_stream>> connections;
  // Work off the I/O threads: full passes over a build (SHA-256, Content-MD5, entry digests;
  // one at a time, hash_mutex_) and making images for /_sim/builds; two threads, so that a
  // listing does not wait behind a pass over 20 GB.
  net::thread_pool blocking{2};

  net::awaitable<void> accept_loop();
  net::awaitable<void> serve(std::shared_ptr<beast::tcp_stream> stream,
                             std::list<std::weak_ptr<beast::tcp_stream>>::iterator registration);
  net::awaitable<bool> write_answer(beast::tcp_stream& stream, answer& a, bool keep_alive,
                                    bool head_only);
  net::awaitable<bool> write_download(beast::tcp_stream& stream, answer& a, bool keep_alive,
                                      std::vector<std::uint8_t>& buffer);

  // Runs `f` on the blocking pool and resumes the caller on its own executor. (Written
  // without a capturing lambda coroutine and awaited from a named variable: GCC 12
  // mis-destroys temporaries around co_await otherwise.)
  template <class F>
  static net::awaitable<std::invoke_result_t<F>> call(F f) {
    co_return f();
  }
  template <class F>
  auto offload(F f) {
    return net::co_spawn(blocking.get_executor(), call(std::move(f)), net::use_awaitable);
  }
};

net::awaitable<void> simulator::impl::accept_loop() {
  auto self = shared_from_this();
  while (!stopping) {
    auto [ec, socket] = co_await acceptor.async_accept(net::make_strand(ioc), use_tuple);
    if (ec) {
      if (stopping || ec == net::error::operation_aborted) co_return;
      // Out of descriptors or similar: back off briefly instead of spinning.
      net::steady_timer timer(acceptor.get_executor(), 50ms);
      co_await timer.async_wait(use_tuple);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
    std::list<std::weak_ptr<beast::tcp_stream>>::iterator registration;
    {
      std::lock_guard lock(connections_mutex);
      registration = connections.insert(connections.end(), stream);
    }
    net::co_spawn(stream->get_executor(), serve(stream, registration), [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::fprintf(stderr, "fus-sim: connection failed: %s\n", x.what());
      }
    });
  }
}

net::awaitable<void> simulator::impl::serve(
    std::shared_ptr<beast::tcp_stream> stream,
    std::list<std::weak_ptr<beast::tcp_stream>>::iterator registration) {
  auto self = shared_from_this();
  struct unregister {
    impl* owner;
    std::list<std::weak_ptr<beast::tcp_stream>>::iterator it;
    ~unregister() {
      std::lock_guard lock(owner->connections_mutex);
      owner->connections.erase(it);
    }
  } guard{this, registration};

  beast::flat_buffer read_buffer;
  std::vector<std::uint8_t> body_buffer;  // allocated on the first download
  while (!stopping) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(1 << 20);
    stream->expires_after(idle_timeout);
    auto [ec, n] = co_await http::async_read_header(*stream, read_buffer, parser, use_tuple);
    if (ec) break;  // closed, timed out or garbage: drop the connection
    if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      // curl sends this before a POST body over 1 KiB and would otherwise wait a second.
      static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [wec, wn] = co_await net::async_write(*stream, net::buffer(go_on), use_tuple);
      if (wec) break;
    }
    if (!parser.is_done()) {
      auto [bec, bn] = co_await http::async_read(*stream, read_buffer, parser, use_tuple);
      if (bec) break;
    }
    auto& req = parser.get();
    const bool keep_alive = req.keep_alive();

    const auto header = [&](http::field f) {
      const auto it = req.find(f);
      return it == req.end() ? std::string_view{} : std::string_view(it->value());
    };
    request_view view;
    view.method = req.method_string();
    view.target = req.target();
    view.authorization = header(http::field::authorization);
    view.cookie = header(http::field::cookie);
    view.range = header(http::field::range);
    view.user_agent = header(http::field::user_agent);
    view.body = req.body();

    answer a = core.handle(view);
    if (a.reset) {  // the reset fault: no answer at all
      core.stats().count_request(a.route, a.kind, 0, "");
      break;
    }
    if (a.deferred == deferred_work::plain_sha256) {
      auto* core_ptr = &core;
      auto name = a.deferred_build;
      auto work = offload([core_ptr, name] { return core_ptr->finish_sha256(name); });
      answer computed = co_await std::move(work);
      a = std::move(computed);
    } else if (a.deferred == deferred_work::build_listing) {
      auto* core_ptr = &core;
      auto work =
          offload([core_ptr, name = a.deferred_build] { return core_ptr->finish_builds(name); });
      answer computed = co_await std::move(work);
      a = std::move(computed);
    } else if (a.deferred == deferred_work::member_listing) {
      auto* core_ptr = &core;
      auto work = offload([core_ptr, name = a.deferred_build, query = a.deferred_query] {
        return core_ptr->finish_members(name, query);
      });
      answer computed = co_await std::move(work);
      a = std::move(computed);
    } else if (a.deferred == deferred_work::content_md5) {
      auto* core_ptr = &core;
      auto* answer_ptr = &a;
      auto work = offload([core_ptr, answer_ptr] { core_ptr->add_content_md5(*answer_ptr); });
      co_await std::move(work);
    }
    if (a.first_byte_delay.count() > 0) {
      net::steady_timer timer(stream->get_executor(), a.first_byte_delay);
      co_await timer.async_wait(use_tuple);
    }
    bool ok = false;
    if (a.download)
      ok = co_await write_download(*stream, a, keep_alive, body_buffer);
    else
      ok = co_await write_answer(*stream, a, keep_alive, req.method() == http::verb::head);
    core.stats().count_request(a.route, a.kind, a.status, a.fus_status);
    if (!ok || !keep_alive || a.close) break;
  }
  boost::system::error_code ignored;
  stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream->socket().close(ignored);
}

net::awaitable<bool> simulator::impl::write_answer(beast::tcp_stream& stream, answer& a,
                                                   bool keep_alive, bool head_only) {
  const bool cut = a.cut_body_at.has_value() && !head_only;
  const auto head = serialize_head(a.status, a.headers, a.body.size(), keep_alive);
  const std::size_t body_bytes = head_only ? 0 : cut ? *a.cut_body_at : a.body.size();
  const std::array<net::const_buffer, 2> buffers{net::buffer(head),
                                                 net::buffer(a.body.data(), body_bytes)};
  stream.expires_after(write_timeout);
  auto [ec, n] = co_await net::async_write(stream, buffers, use_tuple);
  co_return !ec && !cut;
}

net::awaitable<bool> simulator::impl::write_download(beast::tcp_stream& stream, answer& a,
                                                     bool keep_alive,
                                                     std::vector<std::uint8_t>& buffer) {
  auto& plan = *a.download;
  const std::uint64_t length = plan.end - plan.begin;
  const bool cut = plan.cut_after.has_value();
  // A cut body (drop-after, truncate) does not announce itself: no Connection: close.
  const auto head = serialize_head(a.status, a.headers, length, keep_alive);
  stream.expires_after(write_timeout);
  if (plan.head || length == 0) {
    auto [ec, n] = co_await net::async_write(stream, net::buffer(head), use_tuple);
    co_return !ec;
  }
  core.stats().download_started(plan.binary_name);
  if (buffer.size() < body_chunk) buffer.resize(body_chunk);

  const std::uint64_t limit = cut ? std::min(*plan.cut_after, length) : length;
  // stall: the body stops here and the socket stays open.
  const std::uint64_t stop_at = plan.stall_after ? std::min(*plan.stall_after, limit) : limit;
  std::uint64_t sent = 0;
  bool head_sent = false;
  pacer pace;
  net::steady_timer timer(stream.get_executor());
  bool failed = false;
  while (sent < stop_at) {
    auto bps = core.throttle_bps();
    std::uint64_t room = stop_at - sent;
    if (plan.trickle_bps != 0) {  // full speed up to trickle_after, then trickle_bps
      if (sent < plan.trickle_after)
        room = std::min(room, plan.trickle_after - sent);
      else
        bps = bps == 0 ? plan.trickle_bps : std::min(bps, plan.trickle_bps);
    }
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(pace.chunk_for(bps), room));
    plan.image->read_encrypted(plan.begin + sent, std::span<std::uint8_t>(buffer.data(), n));
    if (const auto delay = pace.wait(bps, n); delay.count() > 0) {
      timer.expires_after(delay);
      co_await timer.async_wait(use_tuple);
    }
    stream.expires_after(write_timeout);
    std::array<net::const_buffer, 2> buffers{net::buffer(head_sent ? std::string_view{} : head),
                                             net::buffer(buffer.data(), n)};
    auto [ec, written] = co_await net::async_write(stream, buffers, use_tuple);
    if (ec) {
      failed = true;
      break;
    }
    head_sent = true;
    sent += n;
    pace.sent(n);
    core.stats().download_bytes(plan.binary_name, n);
  }
  if (!failed && !head_sent) {  // drop-after=0, stall=0: the header, then nothing
    auto [ec, written] = co_await net::async_write(stream, net::buffer(head), use_tuple);
    failed = static_cast<bool>(ec);
  }
  if (!failed && plan.stall_after && *plan.stall_after < limit) {
    // Stalled: hold the socket open, sending nothing, until the client gives up (or 10 min,
    // or the simulator stops). Whatever the client sends meanwhile is not answered.
    stream.expires_after(std::chrono::minutes(10));
    std::array<char, 512> sink;
    for (;;) {
      auto [ec, n] = co_await stream.async_read_some(net::buffer(sink), use_tuple);
      if (ec) break;
    }
    failed = true;
  }
  const bool complete = !failed && sent == length;
  core.stats().download_finished(plan.binary_name, complete);
  plan.lease.reset();
  co_return complete;
}

simulator::simulator(net::io_context& ioc, simulator_options options)
    : impl_(std::make_shared<impl>(ioc, options)) {
  if (!options.allow_remote && !is_loopback_host(options.listen_host))
    throw start_error("refusing to listen on non-loopback address '" + options.listen_host +
                      "' (pass --allow-remote to serve other hosts)");
  std::string host = options.listen_host == "localhost" ? "127.0.0.1" : options.listen_host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  if (ec) throw start_error("bad listen address '" + options.listen_host + "'");
  const tcp::endpoint endpoint(address, options.listen_port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw start_error("cannot listen on " + options.listen_host + ":" +
                      std::to_string(options.listen_port) + ": " + ec.message());
  impl_->port = acceptor.local_endpoint().port();
  impl_->host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  // Not detached: the loop holds the impl (shared_from_this) until stop() closes the
  // acceptor, and an exception ending it is printed, never dropped.
  net::co_spawn(acceptor.get_executor(), impl_->accept_loop(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      std::fprintf(stderr, "fus-sim: accept loop failed: %s\n", x.what());
    }
  });
}

simulator::~simulator() {
  stop();
}

std::uint16_t simulator::port() const {
  return impl_->port;
}

std::string simulator::base_url() const {
  return "http://" + impl_->host + ":" + std::to_string(impl_->port) + "/";
}

void simulator::stop() {
  auto self = impl_;
  if (self->stopping.exchange(true)) return;
  net::post(self->acceptor.get_executor(), [self] {
    boost::system::error_code ignored;
    self->acceptor.close(ignored);
  });
  std::lock_guard lock(self->connections_mutex);
  for (const auto& weak : self->connections) {
    if (auto stream = weak.lock()) {
      net::post(stream->get_executor(), [stream] {
        boost::system::error_code ignored;
        stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream->socket().close(ignored);
      });
    }
  }
}

std::optional<std::string> simulator::arm_faults(std::string_view spec) {
  return impl_->core.arm_faults(spec);
}
void simulator::clear_faults() {
  impl_->core.clear_faults();
}
void simulator::set_throttle(std::uint64_t bps) {
  impl_->core.set_throttle(bps);
}
std::string simulator::stats_json() const {
  return impl_->core.stats_json();
}

}  // namespace fusproxy::sim
