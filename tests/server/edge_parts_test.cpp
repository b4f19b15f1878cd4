// The I/O edge's reusable parts on real loopback sockets (no server around them): the peer
// probe behind client_watch, the body sinks (sendfile and chunked coding), the download
// slots (take, hold, refuse, close).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "obs/metrics.hpp"
#include "server/body_sinks.hpp"
#include "server/client_watch.hpp"
#include "server/download_slots.hpp"

using namespace fusproxy::server;
using namespace std::chrono_literals;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// A connected loopback pair: `server` as the edge holds it, `client` a plain socket.
struct socket_pair {
  net::io_context ioc;
  tcp::socket client{ioc};
  std::shared_ptr<connection> server;

  socket_pair() {
    tcp::acceptor acc(ioc, {net::ip::make_address("127.0.0.1"), 0});
    client.connect(acc.local_endpoint());
    server = std::make_shared<connection>(acc.accept());
  }

  // Runs `coro` on the io_context to its end and returns its result.
  template <class T>
  T run(net::awaitable<T> coro) {
    auto f = net::co_spawn(ioc, std::move(coro), net::use_future);
    ioc.restart();
    ioc.run();
    return f.get();
  }
};

// The client reading everything the server sends, on a thread of its own (a sink blocks on a
// full socket otherwise); received() cuts the server side and returns it all.
class client_reader {
 public:
  explicit client_reader(socket_pair& p)
      : p_(p), thread_([this] {
          boost::system::error_code ec;
          net::read(p_.client, net::dynamic_buffer(got_), ec);
        }) {}
  ~client_reader() {
    if (thread_.joinable()) received();
  }
  std::string received() {
    p_.server->cut();
    thread_.join();
    return got_;
  }

 private:
  socket_pair& p_;
  std::string got_;
  std::thread thread_;
};

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

struct temp_file {
  std::filesystem::path path;
  int fd = -1;
  explicit temp_file(const std::string& bytes)
      : path(std::filesystem::temp_directory_path() /
             ("fusproxy-edge-" + std::to_string(::getpid()) + ".bin")) {
    std::ofstream(path, std::ios::binary) << bytes;
    fd = ::open(path.c_str(), O_RDONLY);
  }
  ~temp_file() {
    ::close(fd);
    std::filesystem::remove(path);
  }
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 23);
  return s;
}

}  // namespace

TEST_CASE("peek_peer: quiet, bytes waiting, a FIN behind them, a plain FIN") {
  socket_pair p;
  const int fd = p.server->stream.socket().native_handle();
  CHECK(peek_peer(fd) == peer_state::quiet);
  net::write(p.client, net::buffer(std::string("GET")));
  std::this_thread::sleep_for(20ms);  // loopback delivery; the probe never blocks
  CHECK(peek_peer(fd) == peer_state::has_data);
  CHECK(peek_peer(fd) == peer_state::has_data);  // peeking consumes nothing
  p.client.shutdown(tcp::socket::shutdown_send);
  std::this_thread::sleep_for(20ms);
  CHECK(peek_peer(fd) == peer_state::gone);

  socket_pair q;
  q.client.close();
  std::this_thread::sleep_for(20ms);
  CHECK(peek_peer(q.server->stream.socket().native_handle()) == peer_state::gone);
}

TEST_CASE("stream_sink: a file range by sendfile, Content-Length enforced") {
  socket_pair p;
  const auto bytes = pattern(200000);
  temp_file file(bytes);
  client_reader reader(p);
  stream_sink sink(*p.server, 150000, 5s);
  CHECK(!p.run(sink.write_file(file.fd, 1000, 100000)));
  CHECK(sink.remaining() == 50000);
  const std::string tail = "0123456789";
  CHECK(!p.run(sink.write(bytes_of(tail))));
  // More than the client was promised is refused, nothing of it written.
  CHECK(p.run(sink.write_file(file.fd, 0, 50000)) == boost::system::errc::value_too_large);
  CHECK(sink.written() == 100010);
  CHECK(reader.received() == bytes.substr(1000, 100000) + tail);
}

TEST_CASE("stream_sink: a file that shrank is an error, not a short success") {
  socket_pair p;
  temp_file file(pattern(1000));
  client_reader reader(p);
  stream_sink sink(*p.server, 5000, 5s);
  CHECK(p.run(sink.write_file(file.fd, 0, 5000)));
  CHECK(sink.remaining() == 4000);
  CHECK(reader.received() == pattern(1000));
}

TEST_CASE("chunked_sink: bytes and file ranges as chunks, then the last chunk") {
  socket_pair p;
  const auto bytes = pattern(3000);
  temp_file file(bytes);
  client_reader reader(p);
  chunked_sink sink(*p.server, 5s);
  const std::string hello = "hello";
  CHECK(!p.run(sink.write(bytes_of(hello))));
  CHECK(!p.run(sink.write({})));  // an empty write is no chunk (it would end the body)
  CHECK(!p.run(sink.write_file(file.fd, 10, 2000)));
  CHECK(!p.run(sink.finish()));
  CHECK(sink.written() == 2005);
  CHECK(reader.received() == "5\r\nhello\r\n7d0\r\n" + bytes.substr(10, 2000) + "\r\n0\r\n\r\n");
}

TEST_CASE("download_slots: take, hold, refuse, close") {
  fusproxy::metrics::registry registry;
  auto metrics = std::make_shared<server_metrics>(registry);
  socket_pair p;

  SECTION("over the cap without a queue: 429 with a Retry-After") {
    download_slots slots(0, 1, 0s, metrics);
    REQUIRE(p.run(slots.take(*p.server, "a")) == download_queue::outcome::granted);
    {
      download_slots::held_slot held(slots, "a", "SM-A207F/SER/A/B/C/D");
      CHECK(metrics->downloads_active.value() == 1);
      CHECK(slots.streaming_by_build() ==
            std::map<std::string, std::int64_t>{{"SM-A207F/SER/A/B/C/D", 1}});
      const auto refused = p.run(slots.take(*p.server, "b"));
      CHECK(refused == download_queue::outcome::timed_out);
      const auto r = slots.refusal(refused, false);
      CHECK(r.status == 429);
      CHECK(r.body.find("rate_limited") != std::string::npos);
      CHECK(r.headers.back() == std::pair<std::string, std::string>{"Retry-After", "5"});
      CHECK(metrics->download_refused.value() == 1);
    }
    CHECK(metrics->downloads_active.value() == 0);
    CHECK(slots.streaming_by_build().empty());
    CHECK(p.run(slots.take(*p.server, "b")) == download_queue::outcome::granted);
  }

  SECTION("a queued download is cancelled when the server stops, and so is a later one") {
    download_slots slots(0, 1, 60s, metrics);
    REQUIRE(p.run(slots.take(*p.server, "a")) == download_queue::outcome::granted);
    download_slots::held_slot held(slots, "a", "x");
    auto waiting = net::co_spawn(p.ioc, slots.take(*p.server, "b"), net::use_future);
    p.ioc.restart();
    p.ioc.run_for(50ms);  // queued now
    CHECK(metrics->downloads_queued.value() == 1);
    slots.close();
    p.ioc.run();
    CHECK(waiting.get() == download_queue::outcome::cancelled);
    CHECK(p.run(slots.take(*p.server, "c")) == download_queue::outcome::cancelled);
    const auto r = slots.refusal(download_queue::outcome::cancelled, true);
    CHECK(r.status == 503);
    CHECK(r.close);
    CHECK(r.headers.back() == std::pair<std::string, std::string>{"Retry-After", "1"});
  }

  SECTION("a queued client that hangs up leaves the queue at once") {
    download_slots slots(0, 1, 60s, metrics);
    REQUIRE(p.run(slots.take(*p.server, "a")) == download_queue::outcome::granted);
    download_slots::held_slot held(slots, "a", "x");
    auto waiting = net::co_spawn(p.ioc, slots.take(*p.server, "b"), net::use_future);
    p.ioc.restart();
    p.ioc.run_for(50ms);
    p.client.close();
    p.ioc.run();
    CHECK(waiting.get() == download_queue::outcome::cancelled);
    CHECK(metrics->downloads_queued.value() == 0);
  }
}
