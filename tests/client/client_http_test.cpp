// The HTTP layer and the exact requests of fus_session, against a scripted loopback server
// (plain and TLS): keep-alive reuse, stale pooled connections, size limits, the download
// GET's headers, Content-Range checks, certificate and host name verification.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>

#include <unistd.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "crypto/auth.hpp"
#include "upstream/fus_client.hpp"

namespace Catch {
template <class T>
struct StringMaker<boost::system::result<T, fusproxy::upstream::failure>> {
  static std::string convert(const boost::system::result<T, fusproxy::upstream::failure>& r) {
    return r ? std::string("ok") : "failure: " + r.error().message();
  }
};
}  // namespace Catch

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;
using namespace fusproxy::upstream;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

struct reply {
  http::response<http::string_body> response;
  bool close_after = false;  // close the connection although the answer said keep-alive
};

// Answers each request with what `script` says; records the requests.
class scripted_server {
 public:
  using script_fn = std::function<reply(const http::request<http::string_body>&)>;

  scripted_server(net::io_context& ioc, script_fn script, ssl::context* tls = nullptr)
      : acceptor_(ioc, {net::ip::make_address("127.0.0.1"), 0}),
        script_(std::move(script)),
        tls_(tls) {
    net::co_spawn(ioc, accept_loop(), net::detached);
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  int accepted = 0;
  std::vector<http::request<http::string_body>> requests;

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      ++accepted;
      if (tls_)
        net::co_spawn(acceptor_.get_executor(), serve_tls(std::move(socket)), net::detached);
      else
        net::co_spawn(acceptor_.get_executor(), serve(beast::tcp_stream(std::move(socket))),
                      net::detached);
    }
  }
  net::awaitable<void> serve_tls(tcp::socket socket) {
    ssl::stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls_);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
    if (ec) co_return;
    co_await serve(std::move(stream));
  }
  template <class Stream>
  net::awaitable<void> serve(Stream stream) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(stream, buffer, req, use_tuple);
      if (ec) co_return;
      requests.push_back(req);
      auto r = script_(req);
      r.response.version(11);
      r.response.keep_alive(true);
      r.response.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, r.response, use_tuple);
      if (wec || r.close_after) co_return;  // the stream's destructor closes the socket
    }
  }

  tcp::acceptor acceptor_;
  script_fn script_;
  ssl::context* tls_;
};

reply ok(std::string body, std::vector<std::pair<std::string, std::string>> headers = {}) {
  reply r;
  r.response.result(http::status::ok);
  r.response.body() = std::move(body);
  for (auto& [k, v] : headers) r.response.set(k, v);
  return r;
}

template <class T>
T run(net::io_context& ioc, std::function<net::awaitable<T>()> body) {
  auto future = net::co_spawn(ioc, body(), net::use_future);
  // The server's accept loop never runs out of work: run until the answer is there.
  ioc.restart();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
         std::chrono::steady_clock::now() < deadline)
    ioc.run_one_for(std::chrono::milliseconds(50));
  return future.get();
}

base_url url(std::string text) {
  return *parse_base_url(text);
}

http_request get(std::string target) {
  http_request r;
  r.target = std::move(target);
  return r;
}

#define REQUIRE_OK(r)                                                \
  do {                                                               \
    if (!(r)) FAIL("unexpected failure: " << (r).error().message()); \
  } while (0)

}  // namespace

TEST_CASE("keep-alive connections are reused; a stale one is replaced transparently",
          "[client][http]") {
  net::io_context ioc;
  int n = 0;
  scripted_server server(ioc, [&](const auto&) {
    auto r = ok("answer " + std::to_string(++n));
    r.close_after = n == 3;  // the server drops the idle connection after the 3rd answer
    return r;
  });
  http_client client(ioc.get_executor(), {});
  const auto to = url("http://127.0.0.1:" + std::to_string(server.port()) + "/");
  for (int i = 1; i <= 5; ++i) {
    auto r = run<result<http_response>>(ioc, [&]() { return client.request(to, get("/x"), 1024); });
    REQUIRE_OK(r);
    CHECK(r->body == "answer " + std::to_string(i));
  }
  CHECK(server.accepted == 2);
  CHECK(client.connections_opened() == 2);
  CHECK(client.idle_connections() == 1);
}

TEST_CASE("requests go out as given; answers above the limit are too_large", "[client][http]") {
  net::io_context ioc;
  scripted_server server(ioc, [&](const auto& req) {
    return ok(req.target() == "/big" ? std::string(4096, 'x') : std::string("small"));
  });
  http_client client(ioc.get_executor(), {});
  const auto to = url("http://127.0.0.1:" + std::to_string(server.port()) + "/base/");

  http_request post;
  post.method = http_method::post;
  post.target = "/base/NF_DownloadBinaryForMass.do?file=/neofus/9/A+B_c.zip.enc4";
  post.headers = {{"User-Agent", "Kies2.0_FUS"}, {"X-Request-Id", "rid-7"}};
  post.body = "<FUSMsg/>";
  auto r = run<result<http_response>>(ioc, [&]() { return client.request(to, post, 1024); });
  REQUIRE_OK(r);
  REQUIRE(server.requests.size() == 1);
  const auto& seen = server.requests.front();
  CHECK(seen.method() == http::verb::post);
  CHECK(seen.target() == "/base/NF_DownloadBinaryForMass.do?file=/neofus/9/A+B_c.zip.enc4");
  CHECK(seen[http::field::host] == "127.0.0.1:" + std::to_string(server.port()));
  CHECK(seen[http::field::user_agent] == "Kies2.0_FUS");
  CHECK(seen["X-Request-Id"] == "rid-7");
  CHECK(seen.body() == "<FUSMsg/>");

  auto big =
      run<result<http_response>>(ioc, [&]() { return client.request(to, get("/big"), 1024); });
  REQUIRE_FALSE(big);
  CHECK(big.error().is(errc::too_large));
}

TEST_CASE("fus_session: nonce, cookies and the exact download GET", "[client][http]") {
  net::io_context ioc;
  const std::string nonce = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg==";  // smart2: used raw
  std::string content_range;  // "": the one the Range asks for
  unsigned range_status = 206;
  scripted_server server(ioc, [&](const auto& req) {
    const std::string target(req.target());
    if (target.find("GenerateNonce") != std::string::npos)
      return ok("<FUSMsg><FUSBody><Results><Status>200</Status></Results></FUSBody></FUSMsg>",
                {{"NONCE", nonce}, {"Set-Cookie", "JSESSIONID=s3ss10n; Path=/; HttpOnly"}});
    if (target.find("BinaryInform") != std::string::npos)
      return ok(
          "<FUSMsg><FUSBody><Results><Status>200</Status></Results><Put>"
          "<BINARY_NAME><Data>SM-X_2_20260101000000_abcdefghij_fac.zip.enc4</Data>"
          "</BINARY_NAME><MODEL_PATH><Data>/neofus/9/</Data></MODEL_PATH>"
          "<BINARY_BYTE_SIZE><Data>64</Data></BINARY_BYTE_SIZE>"
          "<BINARY_SW_VERSION><Data>A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/"
          "A207FXXU2CUI2</Data></BINARY_SW_VERSION></Put></FUSBody></FUSMsg>",
          {});
    if (target.find("InitForMass") != std::string::npos)
      return ok("<FUSMsg><FUSBody><Results><Status>200</Status></Results></FUSBody></FUSMsg>",
                {{"Set-Cookie", "JSESSIONID_SVR=node2; Path=/"}});
    std::string cr = content_range;
    if (cr.empty()) {  // "bytes=s-e" -> "bytes s-e/64"
      auto range = std::string(req[http::field::range]);
      cr = "bytes " + range.substr(6) + "/64";
    }
    reply r = ok(std::string(16, 'e'), {{"Content-Range", cr}, {"NONCE", nonce}});
    r.response.result(range_status);
    return r;
  });
  const auto base = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  fus_config config;
  config.fus_url = config.cloud_url = config.fota_url = base;
  fus_client client(ioc.get_executor(), config);
  fus_session session(client, "rid-42");

  download_file file;
  file.path = "/neofus/9/SM-X_2_20260101000000_abcdefghij_fac.zip.enc4";
  file.size = 64;
  file.inform = {"SM-X", "XAA", "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2", {}};
  file.init.binary_name = "SM-X_2_20260101000000_abcdefghij_fac.zip.enc4";
  file.init.served_version = "A/B/C/D";
  file.init.local_code = "XAA";
  file.init.model_type = "9";

  auto bytes = run<result<std::vector<std::uint8_t>>>(ioc, [&]() {
    return session.fetch_range(file, {16, 32});
  });
  REQUIRE_OK(bytes);
  CHECK(bytes->size() == 16);
  // One session, as the clients do: GenerateNonce, BinaryInform for the file, InitForMass,
  // the GET.
  REQUIRE(server.requests.size() == 4);
  const auto& nonce_req = server.requests[0];
  CHECK(nonce_req[http::field::authorization] ==
        R"(FUS nonce="", signature="", nc="", type="", realm="")");
  CHECK(server.requests[1].target() == "/NF_SmartDownloadBinaryInform.do");
  CHECK(server.requests[1][http::field::cookie] == "JSESSIONID=s3ss10n");
  const auto& init = server.requests[2];
  CHECK(init[http::field::cookie] == "JSESSIONID=s3ss10n");
  CHECK(init[http::field::authorization] == "FUS nonce=\"\", signature=\"" +
                                                fusproxy::crypto::smart2_signature(nonce) +
                                                "\", nc=\"\", type=\"\", realm=\"\"");
  const auto& dl = server.requests[3];
  CHECK(dl.method() == http::verb::get);
  CHECK(dl.target() == "/NF_SmartDownloadBinaryForMass.do?file=" + file.path);
  CHECK(dl[http::field::authorization] == "FUS nonce=\"" + nonce + "\", signature=\"" +
                                              fusproxy::crypto::smart2_signature(nonce) +
                                              "\", nc=\"\", type=\"\", realm=\"\"");
  CHECK(dl[http::field::range] == "bytes=16-31");
  CHECK(dl[http::field::cache_control] == "no-cache");
  CHECK(dl[http::field::accept_encoding] == "identity");
  CHECK(dl[http::field::user_agent] == "SMART 2.0");
  CHECK(dl[http::field::cookie].empty());  // most clients send none on the GET
  CHECK(dl["X-Request-Id"] == "rid-42");
  CHECK(session.cookies() == "JSESSIONID=s3ss10n; JSESSIONID_SVR=node2");

  SECTION("a Content-Range that is not exactly the requested one is bad_range") {
    content_range = "bytes 16-31/128";
    auto r = run<result<std::vector<std::uint8_t>>>(ioc, [&]() {
      return session.fetch_range(file, {16, 32});
    });
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::bad_range));
  }
  SECTION("200 to a range request is bad_range") {
    range_status = 200;
    auto r = run<result<std::vector<std::uint8_t>>>(ioc, [&]() {
      return session.fetch_range(file, {16, 32});
    });
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::bad_range));
    CHECK(r.error().http_status == 200);
  }
  SECTION("the file is authorised once per session") {
    auto r = run<result<std::vector<std::uint8_t>>>(ioc, [&]() {
      return session.fetch_range(file, {32, 48});
    });
    REQUIRE_OK(r);
    CHECK(server.requests.size() == 5);
  }
}

namespace {

// A throw-away CA-less self-signed certificate for `san`, made with the openssl CLI.
struct test_cert {
  fs::path dir;
  std::string cert, key;
  bool made = false;
  explicit test_cert(const std::string& san) {
    dir = fs::temp_directory_path() / ("client-http-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    cert = (dir / "cert.pem").string();
    key = (dir / "key.pem").string();
    const auto cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test -addext "
        "subjectAltName=" +
        san + " -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
    made = std::system(cmd.c_str()) == 0;
  }
  ~test_cert() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

}  // namespace

TEST_CASE("TLS: peer and host name verification on by default, CA file, verify off",
          "[client][http][tls]") {
  test_cert cert("DNS:localhost");
  // openssl is a test package (scripts/setup.sh): without it the test must fail, not pass
  // silently with nothing checked.
  REQUIRE(cert.made);
  net::io_context ioc;
  ssl::context server_tls(ssl::context::tls_server);
  server_tls.use_certificate_chain_file(cert.cert);
  server_tls.use_private_key_file(cert.key, ssl::context::pem);
  scripted_server server(
      ioc, [](const auto&) { return ok("secure"); }, &server_tls);
  const auto port = std::to_string(server.port());

  SECTION("an unknown CA is refused") {
    http_client client(ioc.get_executor(), {});
    auto r = run<result<http_response>>(ioc, [&]() {
      return client.request(url("https://localhost:" + port + "/"), get("/"), 1024);
    });
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::tls));
  }
  SECTION("with the CA file, the right host name passes") {
    http_options o;
    o.ca_file = cert.cert;
    http_client client(ioc.get_executor(), o);
    auto r = run<result<http_response>>(ioc, [&]() {
      return client.request(url("https://localhost:" + port + "/"), get("/"), 1024);
    });
    REQUIRE_OK(r);
    CHECK(r->body == "secure");
  }
  SECTION("with the CA file, another host name is refused") {
    http_options o;
    o.ca_file = cert.cert;
    http_client client(ioc.get_executor(), o);
    auto r = run<result<http_response>>(ioc, [&]() {
      return client.request(url("https://127.0.0.1:" + port + "/"), get("/"), 1024);
    });
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::tls));
  }
  SECTION("verification off accepts anything") {
    http_options o;
    o.tls_verify = false;
    http_client client(ioc.get_executor(), o);
    auto r = run<result<http_response>>(ioc, [&]() {
      return client.request(url("https://127.0.0.1:" + port + "/"), get("/"), 1024);
    });
    REQUIRE_OK(r);
  }
  SECTION("a missing CA file stops start-up") {
    http_options o;
    o.ca_file = (cert.dir / "missing.pem").string();
    CHECK_THROWS_AS(http_client(ioc.get_executor(), o), std::runtime_error);
  }
}
