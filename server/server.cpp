#include "server/server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/logger.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <unordered_map>
#include <vector>

#include "firmware/firmware_service.hpp"
#include "http/api_error.hpp"
#include "http/atom_feed.hpp"
#include "http/auth.hpp"
#include "http/client_address.hpp"
#include "http/handler.hpp"
#include "http/http_range.hpp"
#include "http/json_views.hpp"
#include "http/limits.hpp"
#include "http/routes.hpp"
#include "http/status_page.hpp"
#include "obs/logging.hpp"
#include "obs/metrics.hpp"
#include "server/download_queue.hpp"

namespace fusproxy::server {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
using steady = std::chrono::steady_clock;

constexpr std::string_view server_name = "fusproxy/" FUSPROXY_VERSION;

struct connection : std::enable_shared_from_this<connection> {
  explicit connection(tcp::socket s) : stream(std::move(s)) {
    beast::error_code ec;
    const auto ep = stream.socket().remote_endpoint(ec);
    client_ip = ec ? "unknown" : ep.address().to_string();
  }
  beast::tcp_stream stream;  // the TCP layer, whether or not TLS runs over it
  // Set when the client opened with a TLS ClientHello (same port as plain HTTP).
  std::unique_ptr<net::ssl::stream<beast::tcp_stream&>> tls;
  std::string client_ip;
  std::uint64_t id = 0;

  // Runs `op(stream)` on the stream the client speaks HTTP on (TLS or plain TCP); both
  // branches return the same awaitable type.
  template <class Op>
  auto with_stream(Op&& op) {
    if (tls) return op(*tls);
    return op(stream);
  }

  // Closes from any thread, on the connection's own strand.
  void close_soon() {
    net::post(stream.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      self->stream.close();
    });
  }
};

// ---- the client leaving while the service works for it ----

// Whether the peer is still there, asked of a socket that turned readable.
enum class peer_state { gone, quiet, has_data };

peer_state peek_peer(int fd) {
  char byte;
  const auto n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return peer_state::gone;  // FIN
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? peer_state::quiet
                                                                     : peer_state::gone;
  // Bytes wait (a pipelined request, a TLS close_notify): the FIN may be behind them.
  pollfd p{fd, POLLRDHUP, 0};
  if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
    return peer_state::gone;
  return peer_state::has_data;
}

// Watches a connection while the service works on one of its requests (a lookup, a body
// waiting for bytes): when the client closes or resets the connection, or the server
// closes it (shutdown past the grace), `gone` is emitted, on the connection's executor
// where the call is awaited; service_thread carries it across to the service's thread.
// A socket with bytes waiting cannot signal a FIN by readability: it is polled instead.
class client_watch : public std::enable_shared_from_this<client_watch> {
 public:
  explicit client_watch(std::shared_ptr<connection> conn)
      : conn_(std::move(conn)), recheck_(conn_->stream.get_executor()) {}

  net::cancellation_slot slot() { return gone_.slot(); }

  void start() { wait_readable(); }

  // The call is over: no more emissions; the pending wait (if any) is cancelled. Only the
  // watch waits on the socket now (the call and its writes are done).
  void end() {
    over_ = true;
    recheck_.cancel();
    if (waiting_ && conn_->stream.socket().is_open()) {
      boost::system::error_code ec;
      conn_->stream.socket().cancel(ec);
    }
  }

 private:
  void wait_readable() {
    waiting_ = true;
    conn_->stream.socket().async_wait(
        tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
          self->waiting_ = false;
          if (self->over_) return;
          if (!ec) {
            switch (peek_peer(self->conn_->stream.socket().native_handle())) {
              case peer_state::quiet:
                self->wait_readable();
                return;
              case peer_state::has_data:
                self->recheck_later();
                return;
              case peer_state::gone:
                break;
            }
          }
          self->gone_.emit(net::cancellation_type::terminal);  // closed, reset, or shut down
        });
  }

  void recheck_later() {
    recheck_.expires_after(250ms);
    recheck_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->over_) return;
      if (!self->conn_->stream.socket().is_open() ||
          peek_peer(self->conn_->stream.socket().native_handle()) == peer_state::gone) {
        self->gone_.emit(net::cancellation_type::terminal);
        return;
      }
      self->recheck_later();
    });
  }

  std::shared_ptr<connection> conn_;
  net::steady_timer recheck_;
  net::cancellation_signal gone_;
  bool waiting_ = false;
  bool over_ = false;
};

// Awaits `call` (a call into the firmware service), cancelled when the client goes away.
// It runs as a coroutine of its own on the connection's executor, so that the
// cancellation reaches the call and not the session, which then answers or closes.
template <class T>
net::awaitable<T> unless_client_leaves(connection& conn, net::awaitable<T> call) {
  auto watch = std::make_shared<client_watch>(conn.shared_from_this());
  watch->start();
  struct end_watch {
    client_watch& w;
    ~end_watch() { w.end(); }
  } ender{*watch};
  const auto here = co_await net::this_coro::executor;
  co_return co_await net::co_spawn(here, std::move(call),
                                   net::bind_cancellation_slot(watch->slot(), net::use_awaitable));
}

// The parts of a request the pure decisions (http/handler.hpp) look at.
request_view request_view_of(const bhttp::request<bhttp::string_body>& req) {
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

// Writes a body of unknown length as HTTP/1.1 chunks (RFC 9112 7.1); finish() sends the last
// chunk. A body that fails before finish() leaves the chunked body unterminated: the client
// sees an incomplete response, never a complete wrong one.
class chunked_sink final : public body_sink {
 public:
  chunked_sink(connection& conn, std::chrono::seconds progress)
      : conn_(conn), progress_(progress) {}

  net::awaitable<boost::system::error_code> write(std::span<const std::byte> bytes) override {
    if (bytes.empty()) co_return boost::system::error_code{};
    conn_.stream.expires_after(progress_);
    auto chunk = bhttp::make_chunk(net::buffer(bytes.data(), bytes.size()));
    auto [ec, n] =
        co_await conn_.with_stream([&](auto& s) { return net::async_write(s, chunk, use_tuple); });
    if (!ec) written_ += bytes.size();
    co_return ec;
  }
  net::awaitable<boost::system::error_code> write_file(int fd, std::uint64_t offset,
                                                       std::uint64_t length) override {
    std::vector<std::byte> buf(1u << 20);
    while (length > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), length));
      const auto r = ::pread(fd, buf.data(), n, static_cast<off_t>(offset));
      if (r <= 0) co_return make_error_code(boost::system::errc::io_error);
      if (auto ec = co_await write({buf.data(), static_cast<std::size_t>(r)})) co_return ec;
      offset += static_cast<std::uint64_t>(r);
      length -= static_cast<std::uint64_t>(r);
    }
    co_return boost::system::error_code{};
  }
  std::uint64_t remaining() const override { return 0; }  // unknown
  std::uint64_t written() const { return written_; }
  net::awaitable<boost::system::error_code> finish() {
    conn_.stream.expires_after(progress_);
    auto last = bhttp::make_chunk_last();
    auto [ec, n] =
        co_await conn_.with_stream([&](auto& s) { return net::async_write(s, last, use_tuple); });
    co_return ec;
  }

 private:
  connection& conn_;
  std::chrono::seconds progress_;
  std::uint64_t written_ = 0;
};

// Writes a body to the client connection for a body_source, enforcing Content-Length.
class stream_sink final : public body_sink {
 public:
  stream_sink(connection& conn, std::uint64_t length, std::chrono::seconds progress)
      : conn_(conn), remaining_(length), progress_(progress) {}

  net::awaitable<boost::system::error_code> write(std::span<const std::byte> bytes) override {
    if (bytes.size() > remaining_) co_return make_error_code(boost::system::errc::value_too_large);
    // The timeout bounds each write's progress: a client that stops reading is cut.
    conn_.stream.expires_after(progress_);
    const auto buffer = net::buffer(bytes.data(), bytes.size());
    auto [ec, n] =
        co_await conn_.with_stream([&](auto& s) { return net::async_write(s, buffer, use_tuple); });
    remaining_ -= n;
    written_ += n;
    co_return ec;
  }

  net::awaitable<boost::system::error_code> write_file(int fd, std::uint64_t offset,
                                                       std::uint64_t length) override {
    if (length > remaining_) co_return make_error_code(boost::system::errc::value_too_large);
    // Plain TCP: sendfile(2), the kernel copies page cache -> socket (no read into user
    // space, no second copy). The socket is non-blocking; when it is full we wait for it
    // to drain, bounded by the write-progress timeout. pread + write if sendfile refuses.
    // Under TLS the bytes must go through the TLS stream: pread + write below.
    auto& sock = conn_.stream.socket();
    boost::system::error_code nb;
    if (!conn_.tls) sock.native_non_blocking(true, nb);
    while (length > 0 && !conn_.tls && !nb && !no_sendfile_) {
      off_t off = static_cast<off_t>(offset);
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length, 4u << 20));
      const auto n = ::sendfile(sock.native_handle(), fd, &off, want);
      if (n > 0) {
        const auto sent = static_cast<std::uint64_t>(n);
        offset += sent;
        length -= sent;
        remaining_ -= sent;
        written_ += sent;
        continue;
      }
      if (n == 0) co_return make_error_code(boost::system::errc::io_error);  // file shrank
      if (errno == EINTR) continue;
      if (errno == EINVAL || errno == ENOSYS) {
        no_sendfile_ = true;
        break;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        co_return boost::system::error_code(errno, boost::system::system_category());
      auto done = std::make_shared<bool>(false);
      net::steady_timer progress(conn_.stream.get_executor(), progress_);
      progress.async_wait([done, &sock](const boost::system::error_code& ec) {
        if (!ec && !*done) sock.cancel();
      });
      auto [ec] = co_await sock.async_wait(tcp::socket::wait_write, use_tuple);
      *done = true;
      progress.cancel();
      if (ec == net::error::operation_aborted) co_return make_error_code(beast::error::timeout);
      if (ec) co_return ec;
    }
    if (length == 0) co_return boost::system::error_code{};
    std::vector<std::byte> buffer(std::min<std::uint64_t>(length, 256 * 1024));
    while (length > 0) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(length, buffer.size()));
      const auto got = ::pread(fd, buffer.data(), want, static_cast<off_t>(offset));
      if (got < 0) {
        if (errno == EINTR) continue;
        co_return boost::system::error_code(errno, boost::system::system_category());
      }
      if (got == 0) co_return make_error_code(boost::system::errc::io_error);  // file shrank
      if (auto ec = co_await write({buffer.data(), static_cast<std::size_t>(got)})) co_return ec;
      offset += static_cast<std::uint64_t>(got);
      length -= static_cast<std::uint64_t>(got);
    }
    co_return boost::system::error_code{};
  }

  std::uint64_t remaining() const override { return remaining_; }
  std::uint64_t written() const { return written_; }

 private:
  connection& conn_;
  std::uint64_t remaining_;
  std::uint64_t written_ = 0;
  std::chrono::seconds progress_;
  bool no_sendfile_ = false;
};

}  // namespace

struct http_server::impl : std::enable_shared_from_this<impl> {
  impl(net::io_context& ioc, const config::settings& s, firmware_service& fw,
       std::shared_ptr<spdlog::logger> l, metrics::registry* external_registry)
      : own_registry(external_registry ? nullptr : std::make_unique<metrics::registry>()),
        registry(external_registry ? *external_registry : *own_registry),
        metrics(registry),
        ioc(ioc),
        cfg(s),
        firmware(fw),
        log(std::move(l)),
        strand(net::make_strand(ioc)),
        acceptor(strand),
        grace_timer(strand),
        limiter(s.rate_limit),
        slots(s.max_downloads_per_client, s.max_downloads) {
    std::random_device rd;
    char prefix[16];
    std::snprintf(prefix, sizeof prefix, "%08x", rd());
    request_id_prefix = prefix;
  }

  std::unique_ptr<metrics::registry> own_registry;  // when the caller gave none
  metrics::registry& registry;
  server_metrics metrics;
  net::io_context& ioc;
  const config::settings cfg;
  firmware_service& firmware;
  std::shared_ptr<spdlog::logger> log;
  net::strand<net::io_context::executor_type> strand;  // acceptor, timers, shutdown state
  tcp::acceptor acceptor;
  net::steady_timer grace_timer;
  std::optional<net::signal_set> signals;
  std::optional<net::ssl::context> tls_context;  // --tls-cert/--tls-key
  rate_limiter limiter;
  download_queue slots;  // the download caps and their fair queue
  std::uint16_t bound_port = 0;
  steady::time_point started = steady::now();
  std::time_t started_wall = std::time(nullptr);

  std::atomic<bool> shutting_down{false};
  std::atomic<bool> finished{false};
  std::atomic<std::uint64_t> next_request{1};
  std::uint64_t next_connection = 1;  // on strand
  std::string request_id_prefix;

  mutable std::mutex mutex;  // guards the three below
  std::unordered_map<std::uint64_t, std::weak_ptr<connection>> connections;
  std::vector<std::function<void()>> on_stopped;
  std::map<std::string, std::int64_t> clients_by_build;  // download responses streaming now

  // ---- start-up ----

  std::uint16_t start() {
    // sendfile(2) cannot take MSG_NOSIGNAL: a client that hangs up must give EPIPE, not
    // kill the process.
    ::signal(SIGPIPE, SIG_IGN);
    boost::system::error_code ec;
    const auto address = net::ip::make_address(cfg.listen.host, ec);
    if (ec) throw startup_error("--listen: bad address '" + cfg.listen.host + "'");
    const tcp::endpoint endpoint(address, cfg.listen.port);
    const auto where = cfg.listen.host + ":" + std::to_string(cfg.listen.port);
    if (!cfg.tls_cert.empty() || !cfg.tls_key.empty()) load_tls();
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) throw startup_error("cannot listen on " + where + ": " + ec.message());
    bound_port = acceptor.local_endpoint().port();
    if (!cfg.port_file.empty()) {
      // Written whole then renamed, so a watcher never reads a partial number.
      const auto tmp = cfg.port_file + ".tmp";
      {
        std::ofstream out(tmp, std::ios::trunc);
        out << bound_port << '\n';
        if (!out.flush()) throw startup_error("--port-file: cannot write '" + cfg.port_file + "'");
      }
      std::error_code fec;
      std::filesystem::rename(tmp, cfg.port_file, fec);
      if (fec) throw startup_error("--port-file: cannot write '" + cfg.port_file + "'");
    }
    // Owned by the server (the frame holds it) and joined by the HTTP io_context, which
    // runs until the loop has returned (finish() closes the acceptor). Not detached: an
    // exception ending it would leave a server that no longer accepts without a word.
    net::co_spawn(strand, accept_loop(shared_from_this()), [log = log](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        log->critical("the accept loop failed, no new connections: {}", x.what());
      } catch (...) {
        log->critical("the accept loop failed, no new connections");
      }
    });
    log->info("listening on {}:{}", cfg.listen.host, bound_port);
    return bound_port;
  }

  void load_tls() {
    if (cfg.tls_cert.empty() || cfg.tls_key.empty())
      throw startup_error("--tls-cert and --tls-key go together");
    tls_context.emplace(net::ssl::context::tls_server);
    boost::system::error_code ec;
    tls_context->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                                 net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                                 net::ssl::context::no_tlsv1_1,
                             ec);
    tls_context->use_certificate_chain_file(cfg.tls_cert, ec);
    if (ec) throw startup_error("--tls-cert: cannot load '" + cfg.tls_cert + "': " + ec.message());
    tls_context->use_private_key_file(cfg.tls_key, net::ssl::context::pem, ec);
    if (ec) throw startup_error("--tls-key: cannot load '" + cfg.tls_key + "': " + ec.message());
  }

  static net::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
    auto& acc = self->acceptor;
    while (acc.is_open()) {
      auto [ec, socket] = co_await acc.async_accept(net::make_strand(self->ioc), use_tuple);
      if (ec) {
        if (ec == net::error::operation_aborted || !acc.is_open()) co_return;
        // Out of descriptors and the like: log, breathe, go on.
        self->log->warn("accept failed: {}", ec.message());
        net::steady_timer pause(self->strand, 100ms);
        co_await pause.async_wait(use_tuple);
        continue;
      }
      if (self->shutting_down) continue;  // the socket closes as it goes out of scope
      if (self->metrics.connections_active.load() >= self->cfg.max_connections) {
        ++self->metrics.connections_refused;
        continue;
      }
      // Nagle off: the tail of a response must not wait for the client's delayed ACK (a
      // keep-alive client asking for the next file stalled up to 40 ms per response: wrk -c1
      // on a cached 24 MiB build went from 1.1 to 2.4 GB/s).
      boost::system::error_code nodelay_ec;
      socket.set_option(tcp::no_delay(true), nodelay_ec);
      auto conn = std::make_shared<connection>(std::move(socket));
      conn->id = self->next_connection++;
      {
        std::lock_guard lock(self->mutex);
        self->connections.emplace(conn->id, conn);
      }
      ++self->metrics.connections_active;
      ++self->metrics.connections_total;
      net::co_spawn(conn->stream.get_executor(), self->session(conn),
                    [self, conn](std::exception_ptr e) {
                      if (e) {
                        try {
                          std::rethrow_exception(e);
                        } catch (const std::exception& ex) {
                          self->log->error("connection {} failed: {}", conn->client_ip, ex.what());
                        }
                      }
                      self->unregister(conn->id);
                    });
    }
  }

  void unregister(std::uint64_t id) {
    --metrics.connections_active;
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard lock(mutex);
      connections.erase(id);
      if (finished && connections.empty()) callbacks.swap(on_stopped);
    }
    for (auto& f : callbacks) net::post(ioc, std::move(f));
  }

  // ---- shutdown ----

  void shutdown(std::function<void()> stopped) {
    net::post(strand, [self = shared_from_this(), stopped = std::move(stopped)]() mutable {
      if (stopped) self->add_stopped_callback(std::move(stopped));
      if (self->shutting_down.exchange(true)) return;
      self->slots.cancel_all();  // queued downloads get 503 shutting_down
      self->log->info("shutting down: {} request(s) in flight, grace {}s",
                      self->metrics.requests_in_flight.load(), self->cfg.shutdown_grace);
      boost::system::error_code ec;
      self->acceptor.close(ec);
      self->grace_timer.expires_after(std::chrono::seconds(self->cfg.shutdown_grace));
      self->grace_timer.async_wait([self](boost::system::error_code ec) {
        if (ec) return;
        if (self->metrics.requests_in_flight.load() > 0)
          self->log->warn("shutdown grace over: cutting {} request(s)",
                          self->metrics.requests_in_flight.load());
        self->finish();
      });
      self->maybe_finish();
    });
  }

  void add_stopped_callback(std::function<void()> f) {
    std::unique_lock lock(mutex);
    if (finished && connections.empty()) {
      lock.unlock();
      net::post(ioc, std::move(f));
      return;
    }
    on_stopped.push_back(std::move(f));
  }

  void maybe_finish() {
    if (!shutting_down || metrics.requests_in_flight.load() > 0) return;
    net::post(strand, [self = shared_from_this()] { self->finish(); });
  }

  // On the strand: close everything that is left.
  void finish() {
    if (finished.exchange(true)) return;
    grace_timer.cancel();
    if (signals) {
      boost::system::error_code ec;
      signals->cancel(ec);
    }
    std::vector<std::shared_ptr<connection>> open;
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard lock(mutex);
      for (auto& [id, weak] : connections)
        if (auto c = weak.lock()) open.push_back(std::move(c));
      if (connections.empty()) callbacks.swap(on_stopped);
    }
    for (auto& c : open) c->close_soon();
    for (auto& f : callbacks) net::post(ioc, std::move(f));
    log->info("stopped accepting; closing {} connection(s)", open.size());
    if (open.empty()) return;
    // A request waiting on upstream (not on its socket) does not notice the close: past
    // the grace, stop anyway a moment later instead of waiting for it.
    grace_timer.expires_after(1s);
    grace_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return;
      std::vector<std::function<void()>> late;
      {
        std::lock_guard lock(self->mutex);
        late.swap(self->on_stopped);
        if (!late.empty())
          self->log->warn("{} connection(s) still busy: stopping without them",
                          self->connections.size());
      }
      for (auto& f : late) net::post(self->ioc, std::move(f));
    });
  }

  void handle_signals(std::function<void()> stopped) {
    net::post(strand, [self = shared_from_this(), stopped = std::move(stopped)]() mutable {
      self->signals.emplace(self->strand, SIGINT, SIGTERM, SIGHUP);
      self->wait_signal(std::move(stopped));
    });
  }

  void wait_signal(std::function<void()> stopped) {
    signals->async_wait([self = shared_from_this(), stopped = std::move(stopped)](
                            boost::system::error_code ec, int signo) mutable {
      if (ec) return;
      if (signo == SIGHUP) {
        // Log rotation: the old file was renamed; new lines go to a new file at the path.
        if (reopen_log_files(*self->log)) self->log->info("SIGHUP: log file reopened");
        self->wait_signal(std::move(stopped));
        return;
      }
      if (self->shutting_down) {
        self->log->warn("signal {} again: closing at once", signo);
        self->finish();
        return;
      }
      self->log->info("signal {}: graceful shutdown", signo);
      self->shutdown(stopped);
      self->wait_signal(stopped);
    });
  }

  // ---- connections ----

  net::awaitable<void> session(std::shared_ptr<connection> conn) {
    auto& stream = conn->stream;
    beast::flat_buffer buffer;
    bool first = true;
    // The first request's header must arrive whole within --header-timeout of the
    // connection; later ones may idle for --idle-timeout, then get --header-timeout from
    // their first byte: a slow-header client is cut without affecting anyone else.
    stream.expires_after(std::chrono::seconds(cfg.header_timeout));
    if (tls_context) {
      // Not inside && or ?: (GCC 12 mishandles co_await in conditional expressions).
      const bool ok = co_await start_tls(*conn, buffer);
      if (!ok) co_return;
    }
    for (;;) {
      if (!first && buffer.size() == 0) {
        stream.expires_after(std::chrono::seconds(cfg.idle_timeout));
        const auto space = buffer.prepare(4096);
        auto [ec, n] = co_await conn->with_stream(
            [&](auto& s) { return s.async_read_some(space, use_tuple); });
        if (ec) co_return;  // idle timeout, close by peer or by shutdown
        buffer.commit(n);
        stream.expires_after(std::chrono::seconds(cfg.header_timeout));
      } else if (!first) {
        stream.expires_after(std::chrono::seconds(cfg.header_timeout));
      }
      first = false;

      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(max_header_bytes);
      parser.body_limit(max_body_bytes);
      auto [ec, n] = co_await conn->with_stream(
          [&](auto& s) { return bhttp::async_read(s, buffer, parser, use_tuple); });
      if (ec) {
        if (ec == beast::error::timeout) {
          ++metrics.header_timeouts;
          log->debug("{}: request header timeout", conn->client_ip);
          co_return;
        }
        // Only answer what can be told apart; a timeout or a vanished peer just closes.
        std::optional<reply> answer;
        if (ec == bhttp::error::header_limit)
          answer = error_reply(api_error::header_too_large, "request header too large");
        else if (ec == bhttp::error::body_limit)
          answer = error_reply(api_error::payload_too_large, "request body too large");
        else if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
                 ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
          answer = error_reply(api_error::bad_request, "malformed HTTP request");
        if (answer) co_await send_bare(*conn, std::move(*answer));
        co_return;
      }
      auto req = parser.release();
      const bool keep = co_await handle(*conn, req);
      if (!keep) {
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
    }
  }

  // Same port for HTTP and HTTPS: a TLS record starts with 0x16 (handshake), which no HTTP
  // method does. Plain clients keep the peeked bytes in `buffer`. The handshake runs under
  // the header timeout already set.
  net::awaitable<bool> start_tls(connection& conn, beast::flat_buffer& buffer) {
    auto [ec, is_tls] = co_await beast::async_detect_ssl(conn.stream, buffer, use_tuple);
    if (ec) {
      if (ec == beast::error::timeout) ++metrics.header_timeouts;
      co_return false;
    }
    if (!is_tls) co_return true;
    conn.tls = std::make_unique<net::ssl::stream<beast::tcp_stream&>>(conn.stream, *tls_context);
    auto [hec, used] =
        co_await conn.tls->async_handshake(net::ssl::stream_base::server, buffer.data(), use_tuple);
    if (hec) {
      ++metrics.tls_handshake_failures;
      log->debug("{}: TLS handshake failed: {}", conn.client_ip, hec.message());
      co_return false;
    }
    buffer.consume(used);
    ++metrics.tls_connections;
    co_return true;
  }

  // Answers a request that could not be parsed (no request to echo the version of).
  net::awaitable<void> send_bare(connection& conn, reply r) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), 11};
    res.set(bhttp::field::server, server_name);
    res.set(bhttp::field::content_type, r.content_type);
    res.set(bhttp::field::connection, "close");
    res.body() = std::move(r.body);
    res.prepare_payload();
    conn.stream.expires_after(std::chrono::seconds(cfg.idle_timeout));
    co_await conn.with_stream([&](auto& s) { return bhttp::async_write(s, res, use_tuple); });
  }

  std::string make_request_id() {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%s-%llx", request_id_prefix.c_str(),
                  static_cast<unsigned long long>(next_request++));
    return buf;
  }

  // What one request produced, for the access log and metrics.
  struct outcome {
    unsigned status = 0;
    std::uint64_t bytes = 0;
    bool cut = false;
    bool keep_alive = true;
  };

  template <class Res>
  void common_headers(Res& res, const std::string& request_id) {
    res.set(bhttp::field::server, server_name);
    res.set(bhttp::field::date, http::format_http_date(std::time(nullptr)));
    res.set("X-Request-Id", request_id);
  }

  net::awaitable<outcome> send_reply(connection& conn,
                                     const bhttp::request<bhttp::string_body>& req,
                                     const std::string& request_id, reply r) {
    outcome out;
    out.keep_alive = req.keep_alive() && !r.close && !shutting_down;
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), req.version()};
    common_headers(res, request_id);
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
    conn.stream.expires_after(std::chrono::seconds(cfg.idle_timeout));
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

  // Decrements requests_in_flight on every exit path and lets shutdown finish.
  struct in_flight_guard {
    impl& self;
    explicit in_flight_guard(impl& s) : self(s) { ++self.metrics.requests_in_flight; }
    ~in_flight_guard() {
      --self.metrics.requests_in_flight;
      self.maybe_finish();
    }
  };

  // The client a request's limits and access log count: the peer, or behind a
  // --trusted-proxy the address its X-Forwarded-For names.
  std::string request_client(const connection& conn,
                             const bhttp::request<bhttp::string_body>& req) const {
    if (cfg.trusted_proxies.empty()) return conn.client_ip;
    std::string forwarded_for;  // several header lines make one list
    const auto [first, last] = req.equal_range("X-Forwarded-For");
    for (auto it = first; it != last; ++it) {
      if (!forwarded_for.empty()) forwarded_for += ',';
      forwarded_for.append(it->value());
    }
    return client_address(conn.client_ip, forwarded_for, cfg.trusted_proxies);
  }

  net::awaitable<bool> handle(connection& conn, bhttp::request<bhttp::string_body>& req) {
    in_flight_guard guard(*this);
    const auto begun = steady::now();
    const auto incoming_id = req["X-Request-Id"];
    const std::string request_id =
        acceptable_request_id(incoming_id) ? std::string(incoming_id) : make_request_id();
    request_context ctx{request_id, request_client(conn, req)};

    auto parsed = parse_target(req.target());
    std::string_view label = parsed ? route_label(parsed->kind) : "-";
    outcome out;
    bool failed = false;
    try {
      out = co_await dispatch(conn, req, parsed, ctx);
    } catch (const std::exception& e) {
      // A service that threw before any byte of the answer was written (the streaming path
      // catches its own): a bug, answered 500.
      log->error("[{}] request failed: {}", request_id, e.what());
      failed = true;
    }
    if (failed) {
      {
        // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
        reply tmp = error_reply(api_error::internal_error, "internal error");
        out = co_await send_reply(conn, req, request_id, std::move(tmp));
      }
      out.keep_alive = false;
    }
    const double seconds = std::chrono::duration<double>(steady::now() - begun).count();
    metrics.count_request(label, out.status, out.bytes, seconds);
    if (out.cut) ++metrics.responses_cut;
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
    log_access(*log, cfg.log_format, rec);
    co_return out.keep_alive;
  }

  net::awaitable<outcome> dispatch(connection& conn, bhttp::request<bhttp::string_body>& req,
                                   const boost::system::result<route, request_error>& parsed,
                                   const request_context& ctx) {
    const auto& rid = ctx.request_id;
    const request_view view = request_view_of(req);
    admission_rules rules;
    rules.token = cfg.token;
    rules.shutting_down = shutting_down;
    rules.now = std::time(nullptr);
    rules.rate_allows = [&](std::uint32_t& retry_after) {
      if (limiter.allow(ctx.client_ip, steady::now(), retry_after)) return true;
      ++metrics.rate_limited;
      return false;
    };
    const auto admitted = admit(view, parsed, rules);
    if (admitted.kind == admission::answer) {
      reply tmp = admitted.refusal;
      co_return co_await send_reply(conn, req, rid, std::move(tmp));
    }
    if (admitted.kind == admission::health) {
      // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
      reply tmp;
      if (parsed->kind == route_kind::healthz)
        tmp = healthz();
      else
        tmp = co_await readyz(conn);
      co_return co_await send_reply(conn, req, rid, std::move(tmp));
    }
    const route& rt = *parsed;

    switch (rt.kind) {
      case route_kind::healthz:
      case route_kind::readyz:
        break;  // answered above
      case route_kind::metrics: {
        // The service sets its gauges first (at most a few ms: see service_thread).
        // Named first: GCC 12 mishandles temporaries inside co_await expressions.
        auto refresh = firmware.refresh_metrics();
        co_await unless_client_leaves(conn, std::move(refresh));
        reply r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = registry.render();
        r.headers.emplace_back("Cache-Control", "no-store");
        co_return co_await send_reply(conn, req, rid, std::move(r));
      }
      case route_kind::index:
      case route_kind::asset: {
        auto a = page_file_answer(rt.kind == route_kind::index ? "index.html" : rt.file_name,
                                  req[bhttp::field::if_none_match], !cfg.token.empty());
        // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
        reply tmp =
            a ? page_reply(std::move(*a)) : error_reply(api_error::not_found, "no such file");
        co_return co_await send_reply(conn, req, rid, std::move(tmp));
      }
      case route_kind::login:
      case route_kind::logout: {
        sign_in_request in;
        in.method = req.method_string();
        in.body = req.body();
        in.token = cfg.token;
        in.origin = req[bhttp::field::origin];
        in.sec_fetch_site = req["Sec-Fetch-Site"];
        in.host = req[bhttp::field::host];
        in.secure = conn.tls != nullptr;
        in.now = std::time(nullptr);
        reply tmp =
            page_reply(rt.kind == route_kind::login ? sign_in_answer(in) : sign_out_answer(in));
        co_return co_await send_reply(conn, req, rid, std::move(tmp));
      }
      case route_kind::api_status: {
        reply r = json_reply(boost::json::serialize(co_await status_json(conn)), "no-store");
        co_return co_await send_reply(conn, req, rid, std::move(r));
      }
      case route_kind::versions: {
        auto call = firmware.versions(rt.model, rt.region, ctx);
        auto res = co_await unless_client_leaves(conn, std::move(call));
        if (!res) {
          // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
          reply tmp = service_error_reply(res.error(), rt.model, rt.region);
          co_return co_await send_reply(conn, req, rid, std::move(tmp));
        }
        reply r = json_reply(versions_json(*res), cache_control_short(), res->fresh);
        co_return co_await send_reply(conn, req, rid, std::move(r));
      }
      case route_kind::feed: {
        auto res = co_await firmware.versions(rt.model, rt.region, ctx);
        if (!res) {
          // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
          reply tmp = service_error_reply(res.error(), rt.model, rt.region);
          co_return co_await send_reply(conn, req, rid, std::move(tmp));
        }
        reply r = feed_reply(conn, req, *res);
        co_return co_await send_reply(conn, req, rid, std::move(r));
      }
      case route_kind::metadata: {
        auto call = firmware.metadata(rt.model, rt.region, rt.version, ctx);
        auto res = co_await unless_client_leaves(conn, std::move(call));
        if (!res) {
          // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
          reply tmp = service_error_reply(res.error(), rt.model, rt.region);
          co_return co_await send_reply(conn, req, rid, std::move(tmp));
        }
        reply r = json_reply(metadata_json(*res), metadata_cache_control(rt), res->fresh);
        co_return co_await send_reply(conn, req, rid, std::move(r));
      }
      case route_kind::files: {
        auto call = firmware.files(rt.model, rt.region, rt.version, ctx);
        co_return co_await build_listing(conn, req, rt, rid, std::move(call),
                                         [](const auto& v) { return files_json(v); });
      }
      case route_kind::entries: {
        auto call = firmware.entries(rt.model, rt.region, rt.version, rt.file_name, ctx);
        co_return co_await build_listing(conn, req, rt, rid, std::move(call),
                                         [](const auto& v) { return entries_json(v); });
      }
      case route_kind::download:
      case route_kind::file:
        co_return co_await download(conn, req, rt, ctx);
      case route_kind::mirrors:
      case route_kind::mirror:
      case route_kind::cached: {
        auto request = parse_management(rt, req.method_string(), req.body());
        if (!request) {
          reply tmp = error_reply(request.error().kind, request.error().message);
          co_return co_await send_reply(conn, req, rid, std::move(tmp));
        }
        auto call = firmware.manage(std::move(*request));
        auto res = co_await unless_client_leaves(conn, std::move(call));
        if (!res) {
          // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
          reply tmp = service_error_reply(res.error(), rt.model, rt.region);
          co_return co_await send_reply(conn, req, rid, std::move(tmp));
        }
        reply r = json_reply(boost::json::serialize(*res), "no-store");
        co_return co_await send_reply(conn, req, rid, std::move(r));
      }
    }
    {
      // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
      reply tmp = error_reply(api_error::not_found, "no route");
      co_return co_await send_reply(conn, req, rid, std::move(tmp));
    }
  }

  // The Atom feed, with absolute links when the Host header is a plain host[:port], and a
  // strong ETag of its bytes so that feed readers polling with If-None-Match get 304.
  reply feed_reply(const connection& conn, const bhttp::request<bhttp::string_body>& req,
                   const version_list& list) const {
    feed_options o;
    o.generator_version = FUSPROXY_VERSION;
    const auto host = req[bhttp::field::host];
    const bool plain_host =
        !host.empty() && host.size() <= 255 &&
        std::all_of(host.begin(), host.end(), [](unsigned char c) {
          return std::isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
        });
    if (plain_host) o.base_url = (conn.tls ? "https://" : "http://") + std::string(host);
    reply r;
    r.content_type = "application/atom+xml; charset=utf-8";
    r.body = atom_feed(list, o);
    const auto etag = "\"" + std::to_string(std::hash<std::string>{}(r.body)) + "\"";
    r.headers.emplace_back("ETag", etag);
    r.headers.emplace_back("Cache-Control", cache_control_short());
    r.headers.emplace_back("Vary", "Host");
    add_freshness(r.headers, list.fresh);
    if (const auto inm = req[bhttp::field::if_none_match];
        !inm.empty() && inm.find(etag) != inm.npos) {
      r.status = 304;
      r.body.clear();
    }
    return r;
  }

  // Metadata and member lists of a named build never change; `latest`'s may.
  std::string metadata_cache_control(const route& rt) const {
    return rt.version.is_latest() ? cache_control_short() : "public, max-age=3600";
  }

  std::string cache_control_short() const {
    return "public, max-age=" + std::to_string(std::min<std::uint32_t>(cfg.metadata_ttl, 60));
  }

  reply healthz() const {
    reply r;
    r.body = R"({"status":"ok"})";
    r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  }

  net::awaitable<reply> readyz(connection& conn) {
    if (shutting_down) {
      auto r = error_reply(api_error::shutting_down, "the service is shutting down");
      r.close = true;
      co_return r;
    }
    std::string why;
    if (!cache_dir_writable(why)) co_return error_reply(api_error::not_ready, why);
    auto call = firmware.ready();
    const auto service = co_await unless_client_leaves(conn, std::move(call));
    if (!service.ready) co_return error_reply(api_error::not_ready, service.why);
    reply r;
    r.body = R"({"status":"ready"})";
    r.headers.emplace_back("Cache-Control", "no-store");
    co_return r;
  }

  bool cache_dir_writable(std::string& why) const {
    std::error_code ec;
    std::filesystem::create_directories(cfg.cache_dir, ec);
    const auto probe = std::filesystem::path(cfg.cache_dir) / ".fusproxy-ready-probe";
    const int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      why = "cache directory '" + cfg.cache_dir + "' is not writable";
      return false;
    }
    ::close(fd);
    ::unlink(probe.c_str());
    return true;
  }

  net::awaitable<boost::json::object> status_json(connection& conn) {
    status_inputs in;
    in.settings = &cfg;
    in.version = FUSPROXY_VERSION;
    in.started_at = started_wall;
    in.uptime_seconds =
        std::chrono::duration_cast<std::chrono::seconds>(steady::now() - started).count();
    in.shutting_down = shutting_down;
    in.connections = metrics.connections_active.value();
    in.requests_in_flight = metrics.requests_in_flight.value();
    in.downloads_active = metrics.downloads_active.value();
    in.downloads_queued = metrics.downloads_queued.value();
    in.bytes_served = metrics.bytes_served.value();
    {
      std::lock_guard lock(mutex);
      in.clients_by_build = clients_by_build;
    }
    auto call = firmware.status_json();
    in.firmware = co_await unless_client_leaves(conn, std::move(call));
    co_return server::status_json(in);
  }

  // Waits in the fair queue for a download slot, up to --queue-timeout, parking no thread.
  // A client that closes its connection meanwhile leaves the queue at once: a wait for the
  // socket to become readable peeks at it (0 bytes: the peer is gone; data: a pipelined
  // request, the client is alive and keeps its place).
  net::awaitable<download_queue::outcome> wait_for_slot(connection& conn,
                                                        const std::string& client) {
    if (cfg.queue_timeout == 0) co_return download_queue::outcome::timed_out;
    const auto executor = co_await net::this_coro::executor;
    auto waiter = slots.enqueue(client, executor);
    ++metrics.downloads_queued;
    ++metrics.downloads_queued_total;
    const auto begun = steady::now();
    auto& sock = conn.stream.socket();
    sock.async_wait(tcp::socket::wait_read, [this, waiter, &sock](boost::system::error_code ec) {
      if (ec == net::error::operation_aborted) return;
      char byte;
      const auto n = ec ? -1 : ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) slots.cancel(waiter);
    });
    if (shutting_down) slots.cancel(waiter);
    const auto result = co_await slots.wait(waiter, std::chrono::seconds(cfg.queue_timeout));
    boost::system::error_code ignored;
    sock.cancel(ignored);  // the readability wait, if still pending
    --metrics.downloads_queued;
    metrics.queue_wait.observe(std::chrono::duration<double>(steady::now() - begun).count());
    co_return result;
  }

  // When a client refused by the queue may try again: about the time a slot takes to turn
  // over is unknown, so a short, fixed hint that grows with the queue.
  std::uint32_t retry_after_queue() const {
    const auto queued = static_cast<std::uint32_t>(slots.queued());
    return std::min<std::uint32_t>(60, 5 + queued);
  }

  // …/download and …/files/{name}: conditionals, Range, then the body from the service.
  // The body of a representation of unknown size, after its chunked header.
  net::awaitable<outcome> send_chunked(connection& conn, download_representation& rep,
                                       const std::string& rid, outcome out) {
    chunked_sink sink(conn, std::chrono::seconds(cfg.idle_timeout));
    boost::system::error_code body_ec;
    try {
      auto body_call = rep.body->write_range(0, unknown_length, sink);
      body_ec = co_await unless_client_leaves(conn, std::move(body_call));
      if (!body_ec) body_ec = co_await sink.finish();
    } catch (const std::exception& e) {
      log->error("[{}] body source threw: {}", rid, e.what());
      body_ec = make_error_code(boost::system::errc::io_error);
    }
    out.bytes = sink.written();
    if (body_ec) {
      log->warn("[{}] chunked body ended after {} bytes: {}", rid, sink.written(),
                body_ec.message());
      out.cut = true;
      out.keep_alive = false;
      beast::error_code ignored;
      conn.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      conn.stream.close();
    }
    co_return out;
  }

  // …/files and …/files/{member}/: a JSON listing of the build (cacheable like metadata).
  template <class T, class ToJson>
  net::awaitable<outcome> build_listing(connection& conn, bhttp::request<bhttp::string_body>& req,
                                        const route& rt, const std::string& rid,
                                        net::awaitable<service_result<T>> call, ToJson to_json) {
    auto res = co_await unless_client_leaves(conn, std::move(call));
    if (!res) {
      // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
      reply tmp = service_error_reply(res.error(), rt.model, rt.region);
      co_return co_await send_reply(conn, req, rid, std::move(tmp));
    }
    reply r = json_reply(to_json(*res), metadata_cache_control(rt));
    co_return co_await send_reply(conn, req, rid, std::move(r));
  }

  net::awaitable<outcome> download(connection& conn, bhttp::request<bhttp::string_body>& req,
                                   const route& rt, const request_context& ctx) {
    const auto& rid = ctx.request_id;
    download_request dreq{rt.model, rt.region, rt.version,
                          rt.kind == route_kind::file ? download_variant::member
                                                      : (rt.encrypted ? download_variant::encrypted
                                                                      : download_variant::plain),
                          rt.file_name};
    auto open_call = firmware.open_download(dreq, ctx);
    auto opened = co_await unless_client_leaves(conn, std::move(open_call));
    if (!opened) {
      // Built before the co_await: GCC 12 mishandles temporaries inside co_await expressions.
      reply tmp = service_error_reply(opened.error(), rt.model, rt.region);
      co_return co_await send_reply(conn, req, rid, std::move(tmp));
    }
    auto& rep = *opened;

    const representation_view facts{rep.size,     rep.etag,  rep.last_modified, rep.content_type,
                                    rep.filename, rep.fresh, rep.size_known};
    const auto decided = decide_download(
        request_view_of(req), facts,
        rt.version.is_latest() ? cache_control_short() : "public, max-age=31536000, immutable");
    if (const auto* r = std::get_if<reply>(&decided)) {
      reply tmp = *r;
      co_return co_await send_reply(conn, req, rid, std::move(tmp));
    }
    const auto& plan = std::get<stream_plan>(decided);
    const std::uint64_t first = plan.first;
    const std::uint64_t length = plan.length;
    const bool head = req.method() == bhttp::verb::head;

    // Slots are only taken by responses that move bytes; over a cap the download waits.
    const bool takes_slot = !head && (length > 0 || !rep.size_known);
    if (takes_slot && !slots.try_acquire(ctx.client_ip)) {
      const auto waited = co_await wait_for_slot(conn, ctx.client_ip);
      if (waited != download_queue::outcome::granted) {
        reply r;
        if (waited == download_queue::outcome::cancelled && shutting_down) {
          r = error_reply(api_error::shutting_down, "the service is shutting down");
          r.close = true;
          r.headers.emplace_back("Retry-After", "1");
        } else {
          ++metrics.download_refused;
          r = error_reply(api_error::rate_limited,
                          "no download slot became free within --queue-timeout (" +
                              std::to_string(cfg.queue_timeout) + " s); " +
                              std::to_string(slots.queued()) + " download(s) waiting");
          r.headers.emplace_back("Retry-After", std::to_string(retry_after_queue()));
        }
        // A client that went away gets nothing: the write fails and the connection ends.
        co_return co_await send_reply(conn, req, rid, std::move(r));
      }
    }
    struct slot_guard {
      impl* self;
      const std::string* client;
      std::string build;
      ~slot_guard() {
        if (self) {
          self->slots.release(*client);
          --self->metrics.downloads_active;
          std::lock_guard lock(self->mutex);
          if (--self->clients_by_build[build] <= 0) self->clients_by_build.erase(build);
        }
      }
    } slot{takes_slot ? this : nullptr, &ctx.client_ip,
           build_key(rt.model, rt.region, rep.version)};
    if (takes_slot) {
      ++metrics.downloads_active;
      std::lock_guard lock(mutex);
      ++clients_by_build[slot.build];
    }

    outcome out;
    out.status = plan.status;
    out.keep_alive = req.keep_alive() && !shutting_down;
    bhttp::response<bhttp::empty_body> res{static_cast<bhttp::status>(plan.status), req.version()};
    common_headers(res, rid);
    for (const auto& [k, v] : plan.headers) res.set(k, v);
    if (rep.size_known)
      res.content_length(length);
    else
      res.chunked(true);  // an LZ4 image whose size no frame header or decode told yet
    res.keep_alive(out.keep_alive);

    bhttp::response_serializer<bhttp::empty_body> serializer{res};
    conn.stream.expires_after(std::chrono::seconds(cfg.idle_timeout));
    auto [ec, n] = co_await conn.with_stream(
        [&](auto& s) { return bhttp::async_write_header(s, serializer, use_tuple); });
    if (ec) {
      out.cut = true;
      out.keep_alive = false;
      co_return out;
    }
    if (head || (length == 0 && rep.size_known)) co_return out;
    if (!rep.size_known) co_return co_await send_chunked(conn, rep, rid, std::move(out));

    stream_sink sink(conn, length, std::chrono::seconds(cfg.idle_timeout));
    boost::system::error_code body_ec;
    try {
      auto body_call = rep.body->write_range(first, length, sink);
      body_ec = co_await unless_client_leaves(conn, std::move(body_call));
    } catch (const std::exception& e) {
      log->error("[{}] body source threw: {}", rid, e.what());
      body_ec = make_error_code(boost::system::errc::io_error);
    }
    out.bytes = sink.written();
    if (body_ec || sink.remaining() > 0) {
      // Headers are gone: the only honest way to fail is to cut the connection.
      log->warn("[{}] body ended after {} of {} bytes: {}", rid, sink.written(), length,
                body_ec ? body_ec.message() : "short body");
      out.cut = true;
      out.keep_alive = false;
      beast::error_code ignored;
      conn.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      conn.stream.close();
    }
    co_return out;
  }
};

http_server::http_server(boost::asio::io_context& ioc, const config::settings& settings,
                         firmware_service& firmware, std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_shared<impl>(ioc, settings, firmware, std::move(log), nullptr)) {}

http_server::http_server(boost::asio::io_context& ioc, const config::settings& settings,
                         firmware_service& firmware, std::shared_ptr<spdlog::logger> log,
                         metrics::registry& registry)
    : impl_(std::make_shared<impl>(ioc, settings, firmware, std::move(log), &registry)) {}

http_server::~http_server() {
  // Sessions hold the impl; whatever is left runs down when the io_context does.
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

std::uint16_t http_server::start() {
  return impl_->start();
}
std::uint16_t http_server::port() const {
  return impl_->bound_port;
}
void http_server::shutdown(std::function<void()> stopped) {
  impl_->shutdown(std::move(stopped));
}
void http_server::handle_signals(std::function<void()> stopped) {
  impl_->handle_signals(std::move(stopped));
}
const server_metrics& http_server::metrics() const {
  return impl_->metrics;
}

}  // namespace fusproxy::server
