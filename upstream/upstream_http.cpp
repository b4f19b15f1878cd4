#include "upstream/upstream_http.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>

#include <openssl/ssl.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace fusproxy::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using clock = std::chrono::steady_clock;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

namespace {

// One upstream connection: plain TCP or TLS over TCP, with its read buffer.
struct connection {
  std::optional<beast::tcp_stream> tcp;
  std::optional<ssl::stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  std::string origin;
  clock::time_point idle_since{};
  bool reused = false;

  beast::tcp_stream& layer() { return tls ? tls->next_layer() : *tcp; }
  void close() {
    beast::error_code ignored;
    layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
    layer().close();
  }
};

bool is_ssl_error(const beast::error_code& ec) {
  return ec.category() == net::error::get_ssl_category() ||
         ec.category() == ssl::error::get_stream_category();
}

// An error of a connection that was reused from the pool and turned out closed by the
// server before it answered: worth one retry on a fresh connection.
bool is_stale_connection_error(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::error::connection_aborted || ec == net::error::not_connected ||
         ec == ssl::error::stream_truncated;
}

failure io_failure(const beast::error_code& ec, std::string_view during,
                   std::uint64_t received = 0) {
  errc kind = errc::dropped;
  if (ec == beast::error::timeout)
    kind = errc::timeout;
  else if (ec == http::error::body_limit || ec == http::error::header_limit ||
           ec == http::error::buffer_overflow)
    kind = errc::too_large;
  else if (is_ssl_error(ec) && ec != ssl::error::stream_truncated)
    kind = errc::tls;
  else if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message)
    kind = errc::bad_answer;
  auto f = make_failure(kind, std::string(during) + ": " + ec.message());
  f.received = received;
  return f;
}

http::verb to_verb(http_method m) {
  switch (m) {
    case http_method::get:
      return http::verb::get;
    case http_method::post:
      return http::verb::post;
    case http_method::head:
      return http::verb::head;
  }
  return http::verb::get;
}

}  // namespace

// The shared part of http_client: options, TLS context and the connection pool. Body
// streams keep it alive to hand their connection back.
struct client_state : std::enable_shared_from_this<client_state> {
  net::any_io_executor executor;
  http_options options;
  ssl::context tls_context{ssl::context::tls_client};
  mutable std::mutex mutex;  // the pool may be shared by sessions on several threads
  std::multimap<std::string, std::unique_ptr<connection>> idle;
  std::atomic<std::uint64_t> opened{0};

  client_state(net::any_io_executor ex, http_options opts)
      : executor(std::move(ex)), options(std::move(opts)) {
    beast::error_code ec;
    tls_context.set_default_verify_paths(ec);
    if (ec) throw std::runtime_error("TLS: cannot load the system CA store: " + ec.message());
    if (!options.ca_file.empty()) {
      tls_context.load_verify_file(options.ca_file, ec);
      if (ec)
        throw std::runtime_error("TLS: cannot load CA file " + options.ca_file + ": " +
                                 ec.message());
    }
    tls_context.set_verify_mode(options.tls_verify ? ssl::verify_peer : ssl::verify_none);
  }

  std::unique_ptr<connection> take_idle(const std::string& origin) {
    std::lock_guard lock(mutex);
    const auto now = clock::now();
    auto [lo, hi] = idle.equal_range(origin);
    for (auto it = lo; it != hi;) {
      auto c = std::move(it->second);
      it = idle.erase(it);
      if (now - c->idle_since <= options.idle_keepalive) {
        c->reused = true;
        return c;
      }
      c->close();
    }
    return nullptr;
  }

  void give_back(std::unique_ptr<connection> c) {
    if (!c) return;
    c->idle_since = clock::now();
    c->layer().expires_never();
    std::lock_guard lock(mutex);
    if (idle.count(c->origin) >= options.max_idle_per_origin) {
      c->close();
      return;
    }
    auto origin = c->origin;
    idle.emplace(std::move(origin), std::move(c));
  }

  void arm(connection& c, std::chrono::milliseconds op, clock::time_point deadline) {
    c.layer().expires_at(std::min(clock::now() + op, deadline));
  }

  net::awaitable<result<std::unique_ptr<connection>>> connect(const base_url& to,
                                                              clock::time_point deadline) {
    tcp::resolver resolver(executor);
    auto [rec, endpoints] = co_await resolver.async_resolve(to.host, to.port, use_tuple);
    if (rec) co_return make_failure(errc::unreachable, "resolve " + to.host + ": " + rec.message());

    auto c = std::make_unique<connection>();
    c->origin = to.origin();
    if (to.tls) {
      c->tls.emplace(executor, tls_context);
      beast::error_code ip_ec;
      net::ip::make_address(to.host, ip_ec);
      // SNI for names only (RFC 6066 forbids IP literals).
      if (ip_ec && !SSL_set_tlsext_host_name(c->tls->native_handle(), to.host.c_str()))
        co_return make_failure(errc::tls, "cannot set SNI host name " + to.host);
      if (options.tls_verify) c->tls->set_verify_callback(ssl::host_name_verification(to.host));
    } else {
      c->tcp.emplace(executor);
    }

    arm(*c, options.connect_timeout, deadline);
    auto [cec, ep] = co_await c->layer().async_connect(endpoints, use_tuple);
    (void)ep;
    if (cec) {
      if (cec == beast::error::timeout)
        co_return make_failure(errc::timeout, "connect " + to.origin() + ": timed out");
      co_return make_failure(errc::unreachable, "connect " + to.origin() + ": " + cec.message());
    }
    ++opened;
    if (c->tls) {
      arm(*c, options.connect_timeout, deadline);
      auto [hec] = co_await c->tls->async_handshake(ssl::stream_base::client, use_tuple);
      if (hec) {
        if (hec == beast::error::timeout)
          co_return make_failure(errc::timeout,
                                 "TLS handshake with " + to.origin() + ": timed out");
        co_return make_failure(errc::tls,
                               "TLS handshake with " + to.origin() + ": " + hec.message());
      }
    }
    co_return c;
  }

  // A pooled connection to `to`, or a new one.
  net::awaitable<result<std::unique_ptr<connection>>> acquire(const base_url& to,
                                                              clock::time_point deadline,
                                                              bool fresh) {
    if (!fresh)
      if (auto c = take_idle(to.origin())) co_return c;
    co_return co_await connect(to, deadline);
  }
};

namespace {

http::request<http::string_body> make_request(const base_url& to, const http_request& req) {
  http::request<http::string_body> r{to_verb(req.method), req.target, 11};
  const bool default_port = (to.tls && to.port == "443") || (!to.tls && to.port == "80");
  const bool ipv6 = to.host.find(':') != std::string::npos;
  std::string host = ipv6 ? "[" + to.host + "]" : to.host;
  if (!default_port) host += ":" + to.port;
  r.set(http::field::host, host);
  for (const auto& [k, v] : req.headers) r.insert(k, v);
  if (req.method == http_method::post || !req.body.empty()) {
    r.body() = req.body;
    r.prepare_payload();
  }
  r.keep_alive(true);
  return r;
}

// Runs one Beast operation on whichever stream the connection has; `op(stream)` starts it
// with use_tuple. A statement branch, not ?:: GCC 12 miscompiles co_await inside ?:.
template <class Op>
net::awaitable<beast::error_code> on_stream(connection& c, Op op) {
  if (c.tls) {
    auto [ec, n] = co_await op(*c.tls);
    co_return ec;
  }
  auto [ec, n] = co_await op(*c.tcp);
  co_return ec;
}

net::awaitable<beast::error_code> write_request(connection& c,
                                                http::request<http::string_body>& r) {
  return on_stream(c, [&r](auto& s) { return http::async_write(s, r, use_tuple); });
}

template <class Parser>
net::awaitable<beast::error_code> read_whole(connection& c, Parser& parser) {
  return on_stream(
      c, [&c, &parser](auto& s) { return http::async_read(s, c.buffer, parser, use_tuple); });
}

template <class Parser>
net::awaitable<beast::error_code> read_head(connection& c, Parser& parser) {
  return on_stream(c, [&c, &parser](auto& s) {
    return http::async_read_header(s, c.buffer, parser, use_tuple);
  });
}

template <class Parser>
net::awaitable<beast::error_code> read_part(connection& c, Parser& parser) {
  return on_stream(
      c, [&c, &parser](auto& s) { return http::async_read_some(s, c.buffer, parser, use_tuple); });
}

// A body's bytes straight from the socket into the caller's buffer (see read_some).
template <class Stream>
net::awaitable<std::pair<beast::error_code, std::size_t>> read_raw(Stream& stream,
                                                                   std::span<std::uint8_t> buf) {
  auto [ec, n] = co_await stream.async_read_some(net::buffer(buf.data(), buf.size()), use_tuple);
  co_return std::pair{ec, n};
}

template <class Fields>
header_list copy_headers(const Fields& fields) {
  header_list out;
  for (const auto& f : fields)
    out.emplace_back(std::string(f.name_string()), std::string(f.value()));
  return out;
}

}  // namespace

// ---- http_body_stream ----

// Bytes asked from the socket per read while streaming a body (Beast caps a read at 64 KiB).
constexpr std::size_t body_read_size = 64 * 1024;

struct http_body_stream::impl {
  std::shared_ptr<client_state> owner;
  std::unique_ptr<connection> conn;
  http::response_parser<http::buffer_body> parser;
  unsigned status = 0;
  header_list headers;
  std::uint64_t received = 0;
  bool done = false;

  void finish() {
    done = true;
    if (conn && parser.get().keep_alive() && !parser.need_eof())
      owner->give_back(std::move(conn));
    else if (conn) {
      conn->close();
      conn.reset();
    }
  }
};

http_body_stream::http_body_stream(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
http_body_stream::http_body_stream(http_body_stream&&) noexcept = default;
http_body_stream& http_body_stream::operator=(http_body_stream&&) noexcept = default;
http_body_stream::~http_body_stream() = default;

unsigned http_body_stream::status() const {
  return impl_->status;
}
const header_list& http_body_stream::headers() const {
  return impl_->headers;
}
std::uint64_t http_body_stream::received() const {
  return impl_->received;
}
bool http_body_stream::done() const {
  return impl_->done;
}
std::optional<std::uint64_t> http_body_stream::content_length() const {
  auto cl = impl_->parser.content_length();
  if (cl) return *cl;
  return std::nullopt;
}

net::awaitable<result<std::size_t>> http_body_stream::read_some(std::span<std::uint8_t> buffer) {
  auto& s = *impl_;
  if (s.done || buffer.empty()) co_return std::size_t{0};
  if (!s.conn) co_return make_failure(errc::dropped, "body stream already failed");
  // Fast path for downloads: once the parser's buffer is drained, a Content-Length body is
  // read from the socket straight into `buffer` (one recv of up to buffer.size(), no copy).
  // Through the parser every read is capped by its small buffer's capacity (~512 bytes
  // after the header), which made a download CPU-bound at a few hundred MB/s.
  if (const auto length = s.parser.content_length();
      length && !s.parser.chunked() && s.parser.is_header_done() && !s.parser.is_done() &&
      s.conn->buffer.size() == 0) {
    const std::uint64_t left = *length - std::min(*length, s.received);
    if (left == 0) {
      s.finish();
      co_return std::size_t{0};
    }
    const auto span =
        buffer.first(static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), left)));
    s.conn->layer().expires_after(s.owner->options.read_timeout);
    std::pair<beast::error_code, std::size_t> part;
    if (s.conn->tls)
      part = co_await read_raw(*s.conn->tls, span);
    else
      part = co_await read_raw(*s.conn->tcp, span);
    auto [ec, n] = part;
    s.received += n;
    if (n > 0) {
      // Bytes first: an error with data is reported by the next call.
      if (s.received == *length) s.finish();
      co_return n;
    }
    if (!ec) ec = net::error::eof;
    s.conn->close();
    s.conn.reset();
    co_return io_failure(ec, "reading the body", s.received);
  }
  for (;;) {
    auto& body = s.parser.get().body();
    body.data = buffer.data();
    body.size = buffer.size();
    s.conn->layer().expires_after(s.owner->options.read_timeout);
    auto ec = co_await read_part(*s.conn, s.parser);
    const std::size_t got = buffer.size() - s.parser.get().body().size;
    s.received += got;
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      s.conn->close();
      s.conn.reset();
      co_return io_failure(ec, "reading the body", s.received);
    }
    if (s.parser.is_done()) s.finish();
    if (got > 0 || s.done) co_return got;
  }
}

// ---- http_client ----

http_client::http_client(net::any_io_executor executor, http_options options)
    : state_(std::make_shared<client_state>(std::move(executor), std::move(options))) {}
http_client::~http_client() = default;

const http_options& http_client::options() const {
  return state_->options;
}
net::any_io_executor http_client::get_executor() const {
  return state_->executor;
}
std::uint64_t http_client::connections_opened() const {
  return state_->opened.load();
}
std::size_t http_client::idle_connections() const {
  std::lock_guard lock(state_->mutex);
  return state_->idle.size();
}

net::awaitable<result<http_response>> http_client::request(base_url to, http_request req,
                                                           std::size_t max_body) {
  auto state = state_;
  const auto deadline = clock::now() + state->options.request_timeout;
  auto r = make_request(to, req);
  for (int attempt = 0;; ++attempt) {
    auto acquired = co_await state->acquire(to, deadline, attempt > 0);
    if (!acquired) co_return acquired.error();
    auto c = std::move(*acquired);

    state->arm(*c, state->options.read_timeout, deadline);
    auto wec = co_await write_request(*c, r);
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_body);
    if (req.method == http_method::head) parser.skip(true);
    beast::error_code ec = wec;
    if (!ec) {
      state->arm(*c, state->options.read_timeout, deadline);
      ec = co_await read_whole(*c, parser);
    }
    if (ec) {
      const bool stale = c->reused && !parser.got_some() && is_stale_connection_error(ec);
      c->close();
      if (stale && attempt == 0) continue;
      co_return io_failure(ec, wec ? "sending the request to " + to.origin()
                                   : "reading the answer of " + to.origin());
    }
    auto msg = parser.release();
    http_response out;
    out.status = msg.result_int();
    out.headers = copy_headers(msg);
    out.body = std::move(msg.body());
    if (msg.keep_alive())
      state->give_back(std::move(c));
    else
      c->close();
    co_return out;
  }
}

net::awaitable<result<http_body_stream>> http_client::open(base_url to, http_request req) {
  auto state = state_;
  const auto deadline = clock::now() + state->options.request_timeout;
  auto r = make_request(to, req);
  for (int attempt = 0;; ++attempt) {
    auto acquired = co_await state->acquire(to, deadline, attempt > 0);
    if (!acquired) co_return acquired.error();
    auto p = std::make_unique<http_body_stream::impl>();
    p->owner = state;
    p->conn = std::move(*acquired);
    p->parser.body_limit(boost::none);
    // Beast reads at most the buffer's free capacity (>= 512 bytes) per call: a small buffer
    // left by header reads would cap a download at a few KiB per system call.
    p->conn->buffer.reserve(body_read_size);
    if (req.method == http_method::head) p->parser.skip(true);
    auto& c = *p->conn;

    state->arm(c, state->options.read_timeout, deadline);
    auto wec = co_await write_request(c, r);
    beast::error_code ec = wec;
    if (!ec) {
      state->arm(c, state->options.read_timeout, deadline);
      ec = co_await read_head(c, p->parser);
    }
    if (ec) {
      const bool stale = c.reused && !p->parser.got_some() && is_stale_connection_error(ec);
      c.close();
      if (stale && attempt == 0) continue;
      co_return io_failure(ec, wec ? "sending the request to " + to.origin()
                                   : "reading the answer of " + to.origin());
    }
    p->status = p->parser.get().result_int();
    p->headers = copy_headers(p->parser.get());
    if (p->parser.is_done()) p->finish();
    co_return http_body_stream(std::move(p));
  }
}

}  // namespace fusproxy::upstream
