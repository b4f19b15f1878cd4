// The server on 127.0.0.1:0, in-process, with a fake firmware service, driven by plain
// POSIX sockets so that a test can misbehave exactly (slow headers, idle keep-alive).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "firmware/firmware_service.hpp"
#include "obs/logging.hpp"
#include "obs/metrics.hpp"
#include "server/server.hpp"

using namespace fusproxy;
using namespace fusproxy::server;
using namespace std::chrono_literals;
namespace net = boost::asio;

namespace {

constexpr std::uint64_t body_size = 100'000;
std::byte byte_at(std::uint64_t i) {
  return static_cast<std::byte>(i % 251);
}

// Writes byte_at(i) for the asked range, in chunks, optionally pausing between them.
class pattern_source final : public body_source {
 public:
  explicit pattern_source(std::chrono::milliseconds pause) : pause_(pause) {}
  net::awaitable<boost::system::error_code> write_range(std::uint64_t first, std::uint64_t length,
                                                        body_sink& sink) override {
    std::vector<std::byte> chunk;
    while (length > 0) {
      const auto n = std::min<std::uint64_t>(length, 10'000);
      chunk.resize(n);
      for (std::uint64_t i = 0; i < n; ++i) chunk[i] = byte_at(first + i);
      if (pause_.count()) {
        net::steady_timer t(co_await net::this_coro::executor, pause_);
        co_await t.async_wait(net::use_awaitable);
      }
      if (auto ec = co_await sink.write(chunk)) co_return ec;
      first += n;
      length -= n;
    }
    co_return boost::system::error_code{};
  }

 private:
  std::chrono::milliseconds pause_;
};

class fake_service final : public firmware_service {
 public:
  std::atomic<int> calls{0};
  std::atomic<int> bodies_started{0};
  std::chrono::milliseconds pause{0};

  net::awaitable<service_result<version_list>> versions(const std::string& model,
                                                        const std::string& region,
                                                        const request_context&) override {
    ++calls;
    if (model == "SM-UNKNOWN")
      co_return service_error{firmware_errc::not_found, "no such model", {}};
    co_return version_list{model, region, "A/B/C/D", {{"A/B/C/D", "R(Android 11)", false}}, {}};
  }
  net::awaitable<service_result<firmware_metadata>> metadata(const std::string& model,
                                                             const std::string& region,
                                                             const version_ref& v,
                                                             const request_context&) override {
    ++calls;
    if (v.kind == version_ref::full && v.text != "A/B/C/D")
      co_return service_error{firmware_errc::not_hosted, "build gone", "A/B/C/D"};
    firmware_metadata m;
    m.model = model;
    m.region = region;
    m.version = "A/B/C/D";
    m.size = body_size;
    m.last_modified = 1633625949;
    co_return m;
  }
  net::awaitable<service_result<std::vector<zip_member>>> files(const std::string&,
                                                                const std::string&,
                                                                const version_ref&,
                                                                const request_context&) override {
    ++calls;
    co_return std::vector<zip_member>{{"AP.tar.md5", 10, 0, "stored"}};
  }
  net::awaitable<service_result<download_representation>> open_download(
      const download_request& r, const request_context&) override {
    ++calls;
    download_representation rep;
    rep.size = body_size;
    rep.etag = r.variant == download_variant::encrypted ? "\"abcd-enc\"" : "\"abcd-plain\"";
    rep.last_modified = 1633625949;
    rep.content_type = "application/zip";
    rep.filename = "firmware.zip";
    rep.version = "A/B/C/D";
    rep.body = std::make_shared<counting_source>(*this);
    co_return rep;
  }

 private:
  struct counting_source final : body_source {
    explicit counting_source(fake_service& s) : owner(s) {}
    fake_service& owner;
    net::awaitable<boost::system::error_code> write_range(std::uint64_t first, std::uint64_t length,
                                                          body_sink& sink) override {
      ++owner.bodies_started;
      pattern_source inner(owner.pause);
      co_return co_await inner.write_range(first, length, sink);
    }
  };
};

struct response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool complete = false;
};

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};  // never hang a test forever
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Reads one response (Content-Length framed; to EOF otherwise) from a connection.
response read_response(int fd, bool head = false) {
  response r;
  std::string data;
  char buf[65536];
  std::size_t header_end = std::string::npos;
  std::size_t need = std::string::npos;
  while (true) {
    if (header_end == std::string::npos) {
      header_end = data.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::string_view head_text(data.data(), header_end);
        r.status = std::stoi(std::string(head_text.substr(9, 3)));
        std::size_t pos = head_text.find("\r\n");
        while (pos != std::string_view::npos && pos < head_text.size()) {
          const auto next = head_text.find("\r\n", pos + 2);
          auto line = head_text.substr(
              pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
          const auto colon = line.find(':');
          std::string name(line.substr(0, colon));
          for (auto& c : name) c = static_cast<char>(std::tolower(c));
          auto value = line.substr(colon + 1);
          while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
          r.headers[name] = std::string(value);
          pos = next;
        }
        const bool no_body = head || r.status == 304;
        if (no_body)
          need = 0;
        else if (r.headers.count("content-length"))
          need = std::stoull(r.headers["content-length"]);
      }
    }
    if (header_end != std::string::npos && need != std::string::npos &&
        data.size() >= header_end + 4 + need) {
      r.body = data.substr(header_end + 4, need);
      r.complete = true;
      return r;
    }
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  if (header_end != std::string::npos) r.body = data.substr(header_end + 4);
  return r;
}

// One request on a fresh connection.
response fetch(std::uint16_t port, const std::string& method, const std::string& target,
               const std::string& extra_headers = "") {
  const int fd = connect_to(port);
  REQUIRE(fd >= 0);
  send_all(fd, method + " " + target + " HTTP/1.1\r\nHost: test\r\n" + extra_headers +
                   "Connection: close\r\n\r\n");
  auto r = read_response(fd, method == "HEAD");
  ::close(fd);
  return r;
}

std::string error_code_of(const response& r) {
  return std::string(boost::json::parse(r.body).at("error").at("code").as_string());
}

template <class F>
bool eventually(F&& condition, std::chrono::milliseconds deadline = 5s) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

struct running_server {
  net::io_context ioc;
  fake_service fake;
  config::settings settings;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<http_server> server;
  std::thread thread;
  std::uint16_t port = 0;
  std::atomic<bool> stopped{false};

  explicit running_server(config::settings s = {}) : settings(std::move(s)) {
    settings.listen = {"127.0.0.1", 0};
    settings.cache_dir = (std::filesystem::temp_directory_path() /
                          ("fusproxy-server-test-" + std::to_string(::getpid())))
                             .string();
    settings.log_level = "warn";
    log = make_logger(settings, "test");
    server = std::make_unique<http_server>(ioc, settings, fake, log);
    port = server->start();
    thread = std::thread([this] { ioc.run(); });
  }
  void shutdown() {
    server->shutdown([this] { stopped = true; });
  }
  ~running_server() {
    if (thread.joinable()) {
      shutdown();
      thread.join();
    }
  }
};

}  // namespace

TEST_CASE("health, errors as JSON, methods, request ids") {
  running_server s;
  auto h = fetch(s.port, "GET", "/healthz");
  CHECK(h.status == 200);
  CHECK(h.headers["content-type"] == "application/json");
  CHECK(!h.headers["x-request-id"].empty());
  CHECK(!h.headers["date"].empty());

  auto ready = fetch(s.port, "GET", "/readyz");
  CHECK(ready.status == 200);

  auto nf = fetch(s.port, "GET", "/no/such/route");
  CHECK(nf.status == 404);
  CHECK(error_code_of(nf) == "not_found");

  auto bad = fetch(s.port, "GET", "/firmware/SM_A207F/SER/latest");
  CHECK(bad.status == 400);
  CHECK(error_code_of(bad) == "bad_request");
  auto bad_version = fetch(s.port, "GET", "/firmware/SM-A207F/SER/A_B/download");
  CHECK(bad_version.status == 400);
  CHECK(s.fake.calls == 0);  // nothing malformed reached the service

  auto post = fetch(s.port, "POST", "/firmware/SM-A207F/SER", "Content-Length: 0\r\n");
  CHECK(post.status == 405);
  CHECK(post.headers["allow"] == "GET, HEAD");
  CHECK(error_code_of(post) == "method_not_allowed");

  auto echoed = fetch(s.port, "GET", "/healthz", "X-Request-Id: abc-123\r\n");
  CHECK(echoed.headers["x-request-id"] == "abc-123");
  auto replaced = fetch(s.port, "GET", "/healthz", "X-Request-Id: bad id!\r\n");
  CHECK(replaced.headers["x-request-id"] != "bad id!");

  auto huge = fetch(s.port, "GET", "/healthz", "X-Big: " + std::string(20000, 'a') + "\r\n");
  CHECK(huge.status == 431);
  auto long_url = fetch(s.port, "GET", "/" + std::string(3000, 'a'));
  CHECK(long_url.status == 414);

  auto metrics = fetch(s.port, "GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("fusproxy_http_requests_total{route=\"healthz\",status=\"200\"}") !=
        std::string::npos);
  CHECK(fetch(s.port, "GET", "/").headers["content-type"].find("text/html") == 0);
  CHECK(boost::json::parse(fetch(s.port, "GET", "/api/status").body).at("service").at("name") ==
        "fusproxy");
}

TEST_CASE("firmware routes go to the service") {
  running_server s;
  auto v = fetch(s.port, "GET", "/firmware/sm-a207f/ser");
  REQUIRE(v.status == 200);
  const auto vj = boost::json::parse(v.body);
  CHECK(vj.at("model") == "SM-A207F");
  CHECK(vj.at("versions").at(0).at("version") == "A/B/C/D");

  auto unknown = fetch(s.port, "GET", "/firmware/SM-UNKNOWN/SER");
  CHECK(unknown.status == 404);
  CHECK(error_code_of(unknown) == "not_found");

  auto gone = fetch(s.port, "GET", "/firmware/SM-A207F/SER/X_Y_Z_W");
  CHECK(gone.status == 404);
  const auto gj = boost::json::parse(gone.body);
  CHECK(gj.at("error").at("code") == "not_hosted");
  CHECK(gj.at("error").at("served_version") == "A/B/C/D");
  CHECK(gj.at("error").at("download_url") == "/firmware/SM-A207F/SER/A_B_C_D/download");

  auto meta = fetch(s.port, "GET", "/firmware/SM-A207F/SER/latest");
  CHECK(meta.status == 200);
  CHECK(boost::json::parse(meta.body).at("download_url") ==
        "/firmware/SM-A207F/SER/A_B_C_D/download");
}

TEST_CASE("downloads: full, HEAD without a fetch, Range, 416, 304") {
  running_server s;
  const std::string url = "/firmware/SM-A207F/SER/A_B_C_D/download";
  auto full = fetch(s.port, "GET", url);
  REQUIRE(full.status == 200);
  REQUIRE(full.body.size() == body_size);
  CHECK(full.headers["content-length"] == std::to_string(body_size));
  CHECK(full.headers["accept-ranges"] == "bytes");
  CHECK(full.headers["etag"] == "\"abcd-plain\"");
  CHECK(full.headers["last-modified"] == "Thu, 07 Oct 2021 16:59:09 GMT");
  CHECK(full.headers["content-disposition"] == "attachment; filename=\"firmware.zip\"");
  CHECK(full.headers["cache-control"].find("immutable") != std::string::npos);
  bool pattern_ok = true;
  for (std::uint64_t i = 0; i < body_size; ++i)
    pattern_ok = pattern_ok && static_cast<std::byte>(full.body[i]) == byte_at(i);
  CHECK(pattern_ok);

  const int started = s.fake.bodies_started;
  auto head = fetch(s.port, "HEAD", url);
  CHECK(head.status == 200);
  CHECK(head.headers["content-length"] == std::to_string(body_size));
  CHECK(s.fake.bodies_started == started);  // HEAD starts no fetch

  auto part = fetch(s.port, "GET", url, "Range: bytes=99990-\r\n");
  CHECK(part.status == 206);
  CHECK(part.headers["content-range"] == "bytes 99990-99999/100000");
  REQUIRE(part.body.size() == 10);
  CHECK(static_cast<std::byte>(part.body[0]) == byte_at(99990));

  auto suffix = fetch(s.port, "GET", url, "Range: bytes=-1\r\n");
  CHECK(suffix.headers["content-range"] == "bytes 99999-99999/100000");

  auto unsat = fetch(s.port, "GET", url, "Range: bytes=100000-\r\n");
  CHECK(unsat.status == 416);
  CHECK(unsat.headers["content-range"] == "bytes */100000");
  CHECK(error_code_of(unsat) == "range_not_satisfiable");

  auto ignored = fetch(s.port, "GET", url, "Range: bytes=5-1\r\n");
  CHECK(ignored.status == 200);

  auto not_modified = fetch(s.port, "GET", url, "If-None-Match: \"abcd-plain\"\r\n");
  CHECK(not_modified.status == 304);
  CHECK(not_modified.headers["etag"] == "\"abcd-plain\"");

  auto stale_if_range = fetch(s.port, "GET", url, "Range: bytes=0-0\r\nIf-Range: \"old\"\r\n");
  CHECK(stale_if_range.status == 200);

  auto enc = fetch(s.port, "HEAD", url + "?encrypted=1");
  CHECK(enc.headers["etag"] == "\"abcd-enc\"");

  auto latest = fetch(s.port, "HEAD", "/firmware/SM-A207F/SER/latest/download");
  CHECK(latest.status == 200);  // no redirect
  CHECK(latest.headers["cache-control"].find("immutable") == std::string::npos);
}

TEST_CASE("--token: everything but the health checks needs the bearer token") {
  config::settings with_token;
  with_token.token = "s3cret";
  running_server s(with_token);
  CHECK(fetch(s.port, "GET", "/healthz").status == 200);
  CHECK(fetch(s.port, "GET", "/readyz").status == 200);
  for (const char* target : {"/", "/metrics", "/api/status", "/firmware/SM-A207F/SER",
                             "/no/such/route", "/firmware/bad_model/SER"}) {
    INFO(target);
    auto r = fetch(s.port, "GET", target);
    CHECK(r.status == 401);
    CHECK(error_code_of(r) == "unauthorized");
    CHECK(fetch(s.port, "GET", target, "Authorization: Bearer wrong\r\n").status == 401);
  }
  CHECK(s.fake.calls == 0);
  CHECK(fetch(s.port, "GET", "/firmware/SM-A207F/SER", "Authorization: Bearer s3cret\r\n").status ==
        200);
}

TEST_CASE("rate limit answers 429 with Retry-After") {
  config::settings limited;
  limited.rate_limit = 1;
  running_server s(limited);
  CHECK(fetch(s.port, "GET", "/metrics").status == 200);
  auto r = fetch(s.port, "GET", "/metrics");
  CHECK(r.status == 429);
  CHECK(error_code_of(r) == "rate_limited");
  CHECK(!r.headers["retry-after"].empty());
  CHECK(fetch(s.port, "GET", "/healthz").status == 200);  // probes are exempt
}

TEST_CASE("a slow-header client is cut by the header timeout; others are served") {
  config::settings quick;
  quick.header_timeout = 1;
  running_server s(quick);
  const int slow = connect_to(s.port);
  REQUIRE(slow >= 0);
  std::atomic<bool> cut{false};
  std::thread slowloris([&] {
    const std::string request =
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    for (char c : request) {
      if (::send(slow, &c, 1, MSG_NOSIGNAL) <= 0) {
        cut = true;
        return;
      }
      pollfd p{slow, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) {
        char b;
        if (::recv(slow, &b, 1, 0) <= 0) {
          cut = true;
          return;
        }
      }
    }
  });
  // While the slow client dribbles, others are answered promptly.
  for (int i = 0; i < 5; ++i) CHECK(fetch(s.port, "GET", "/healthz").status == 200);
  CHECK(eventually([&] { return cut.load(); }, 4s));
  slowloris.join();
  ::close(slow);
  CHECK(s.server->metrics().header_timeouts.value() >= 1);
}

TEST_CASE("graceful shutdown finishes an in-flight slow response") {
  running_server s;
  s.fake.pause = 50ms;  // 10 chunks: about half a second

  // An idle keep-alive connection, opened before the shutdown.
  const int idle = connect_to(s.port);
  REQUIRE(idle >= 0);
  send_all(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(read_response(idle).status == 200);

  response slow_result;
  std::thread slow_client(
      [&] { slow_result = fetch(s.port, "GET", "/firmware/SM-A207F/SER/latest/download"); });
  REQUIRE(eventually([&] { return s.fake.bodies_started.load() == 1; }));

  s.shutdown();
  // New connections are refused once the listener is closed.
  CHECK(eventually([&] {
    const int fd = connect_to(s.port);
    if (fd >= 0) ::close(fd);
    return fd < 0;
  }));
  // A new request on an open connection is told the service is going away.
  send_all(idle, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto refused = read_response(idle);
  CHECK(refused.status == 503);
  CHECK(error_code_of(refused) == "shutting_down");
  ::close(idle);

  slow_client.join();
  CHECK(slow_result.status == 200);
  CHECK(slow_result.complete);
  CHECK(slow_result.body.size() == body_size);
  CHECK(eventually([&] { return s.stopped.load(); }));
  s.thread.join();  // the io_context ran out of work: everything closed
}

TEST_CASE("shutdown grace expiry cuts a response that takes too long") {
  config::settings short_grace;
  short_grace.shutdown_grace = 0;
  running_server s(short_grace);
  s.fake.pause = 200ms;
  response result;
  std::thread client(
      [&] { result = fetch(s.port, "GET", "/firmware/SM-A207F/SER/latest/download"); });
  REQUIRE(eventually([&] { return s.fake.bodies_started.load() == 1; }));
  s.shutdown();
  client.join();
  CHECK(result.status == 200);
  CHECK_FALSE(result.complete);  // cut, never passed off as complete
  CHECK(result.body.size() < body_size);
  s.thread.join();
}
