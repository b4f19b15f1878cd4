// End-to-end: fus_session against a real fus-sim process (both dialects, faults).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include "crypto/ecb.hpp"
#include "upstream/fus_client.hpp"

// Catch prints results through this (boost's own operator<< needs T to be printable).
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
namespace fs = std::filesystem;
using namespace fusproxy::upstream;
using fusproxy::crypto::byte_range;
using fusproxy::protocol::dialect;
using namespace std::chrono_literals;

// A fus-sim child process on an ephemeral loopback port (read from --port-file).
class sim_process {
 public:
  explicit sim_process(std::vector<std::string> extra) {
    dir_ = fs::temp_directory_path() /
           ("client-sim-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::create_directories(dir_);
    const auto port_file = (dir_ / "port").string();
    std::vector<std::string> args{FUS_SIM_PATH, "--listen", "127.0.0.1:0", "--port-file",
                                  port_file};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("cannot start fus-sim");
    if (pid_ == 0) {
      // The simulator dies with the test, even when the test crashes.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    // Poll for the port file with a deadline; fail fast when the child died.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(port_file);
      if (in >> port_) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("fus-sim exited at start-up");
      }
      std::this_thread::sleep_for(10ms);
    }
    throw std::runtime_error("fus-sim did not write its port file in time");
  }
  ~sim_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  pid_t pid_ = -1;
  unsigned port_ = 0;
  fs::path dir_;
};

sim_process& shared_sim() {
  static sim_process sim({});
  return sim;
}

fus_config config_for(const sim_process& sim, dialect d) {
  fus_config c;
  c.dialect = d;
  c.fus_url = c.cloud_url = c.fota_url = sim.url();
  return c;
}

// Runs one coroutine to completion on a fresh io_context.
template <class T>
T run(net::io_context& ioc, std::function<net::awaitable<T>()> body) {
  auto future = net::co_spawn(ioc, body(), net::use_future);
  ioc.restart();
  ioc.run();
  return future.get();
}

// The /_sim/ control routes, driven with the client's own HTTP layer.
struct sim_control {
  http_client& http;
  base_url base;

  net::awaitable<boost::json::value> call(http_method m, std::string path, std::string body = {}) {
    http_request req;
    req.method = m;
    req.target = "/_sim/" + path;
    req.body = std::move(body);
    auto r = co_await http.request(base, std::move(req), 1 << 20);
    if (!r) throw std::runtime_error("sim control: " + r.error().message());
    if (r->status != 200) throw std::runtime_error("sim control " + path + ": " + r->body);
    co_return boost::json::parse(r->body);
  }
  // Faults are armed with exact counts, so each test consumes what it arms.
  net::awaitable<void> arm(std::string spec) {
    co_await call(http_method::post, "faults", std::move(spec));
  }
  net::awaitable<boost::json::object> build(std::string binary_name) {
    auto v = co_await call(http_method::get, "builds/" + binary_name);
    co_return v.as_object();
  }
};

#define REQUIRE_OK(r)                                                \
  do {                                                               \
    if (!(r)) FAIL("unexpected failure: " << (r).error().message()); \
  } while (0)

struct harness {
  net::io_context ioc;
  fus_client client;
  sim_control control;

  harness(const sim_process& sim, dialect d, http_options http = {}, fus_config extra = {})
      : client(ioc.get_executor(), merge(config_for(sim, d), extra), std::move(http)),
        control{client.http(), *parse_base_url(sim.url())} {}

  static fus_config merge(fus_config c, const fus_config& extra) {
    c.imei_by_model = extra.imei_by_model;
    c.default_imei = extra.default_imei;
    return c;
  }

  template <class T>
  T run(std::function<net::awaitable<T>()> body) {
    return ::run<T>(ioc, std::move(body));
  }
};

std::vector<std::uint8_t> decrypt(const build_info& b, const std::vector<std::uint8_t>& cipher) {
  fusproxy::crypto::block_decryptor d(b.key);
  std::vector<std::uint8_t> out(cipher.size());
  REQUIRE_FALSE(d.decrypt(cipher, out));
  return out;
}

std::string dialect_name(dialect d) {
  return d == dialect::smart2 ? "smart2" : "legacy";
}

}  // namespace

TEST_CASE("versions: SmartHistory and FOTA merged, betas flagged, latest stable", "[client][sim]") {
  auto& sim = shared_sim();
  const auto d = GENERATE(dialect::smart2, dialect::legacy);
  INFO(dialect_name(d));
  harness h(sim, d);
  fus_session session(h.client, "test-versions");

  auto a207 = h.run<result<version_list>>([&]() { return session.versions("sm-a207f", "ser"); });
  REQUIRE_OK(a207);
  CHECK(a207->latest == "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2");
  REQUIRE(a207->versions.size() == 3);
  CHECK(a207->versions.front().version == a207->latest);

  auto g990 = h.run<result<version_list>>([&]() { return session.versions("SM-G990B", "BTU"); });
  REQUIRE_OK(g990);
  CHECK(g990->latest == "G990BXXSDFYE1/G990BOXMDFYE1/G990BXXSDFYE1/G990BXXSDFYE1");
  if (d == dialect::smart2) {
    // SmartHistory lists the beta above the stable build and flags it.
    REQUIRE(g990->versions.size() == 3);
    CHECK(g990->versions[0].beta);
    CHECK(g990->versions[0].version == "G990BXXU9ZZE4/G990BOXM9ZZE4/G990BXXU9CZE4/G990BXXU9ZZE4");
    CHECK_FALSE(g990->versions[1].beta);
  } else {
    // FOTA knows no betas.
    for (const auto& v : g990->versions) CHECK_FALSE(v.beta);
  }

  // SM-G900F/DBT is not in FOTA: only SmartHistory (smart2) knows it.
  auto g900 = h.run<result<version_list>>([&]() { return session.versions("SM-G900F", "DBT"); });
  if (d == dialect::smart2) {
    REQUIRE_OK(g900);
    CHECK(g900->latest == "G900FXXU1CRH1/G900FDBT1CRH1/G900FXXU1CRH1/G900FXXU1CRH1");
  } else {
    REQUIRE_FALSE(g900);
    CHECK(g900.error().is(errc::not_found));
  }

  auto unknown = h.run<result<version_list>>([&]() { return session.versions("SM-X000Z", "XXX"); });
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().is(errc::not_found));

  auto malformed =
      h.run<result<version_list>>([&]() { return session.versions("SM-A207F/../x", "SER"); });
  REQUIRE_FALSE(malformed);
  CHECK(malformed.error().is(errc::invalid_argument));
}

TEST_CASE("resolve latest and exact versions: metadata and plain_size equal the catalogue",
          "[client][sim]") {
  auto& sim = shared_sim();
  const auto d = GENERATE(dialect::smart2, dialect::legacy);
  INFO(dialect_name(d));
  harness h(sim, d);

  struct expectation {
    std::string model, region, spec;
    encryption enc;
  };
  std::vector<expectation> cases{
      {"SM-A207F", "SER", "latest", encryption::enc4},
      {"sm-a207f", "ser", "A207FXXU2CUI2", encryption::enc4},  // PDA only, through the list
      {"SM-G990B", "BTU", "G990BXXSDFYE1_G990BOXMDFYE1_G990BXXSDFYE1_G990BXXSDFYE1",
       encryption::enc4},
      {"SM-G900F", "DBT", "G900FXXU1CRH1/G900FDBT1CRH1/G900FXXU1CRH1/G900FXXU1CRH1",
       encryption::enc2},
  };
  if (d == dialect::smart2) cases.push_back({"SM-G900F", "DBT", "latest", encryption::enc2});

  for (const auto& c : cases) {
    INFO(c.model << " " << c.region << " " << c.spec);
    fus_session session(h.client);
    auto b =
        h.run<result<build_info>>([&]() { return session.resolve(c.model, c.region, c.spec); });
    REQUIRE_OK(b);
    CHECK(b->enc == c.enc);
    auto truth =
        h.run<boost::json::object>([&]() { return h.control.build(b->inform.binary_name); });
    CHECK(b->version == std::string(truth.at("version").as_string()));
    CHECK(b->inform.byte_size == truth.at("encrypted_size").to_number<std::uint64_t>());
    CHECK(b->inform.crc == truth.at("announced_crc32").to_number<std::uint32_t>());
    CHECK(b->inform.model_path == std::string(truth.at("model_path").as_string()));
    CHECK(fusproxy::crypto::to_hex(b->key) == std::string(truth.at("key").as_string()));

    auto plain = h.run<result<std::uint64_t>>([&]() { return session.plain_size(*b); });
    REQUIRE_OK(plain);
    CHECK(*plain == truth.at("plain_size").to_number<std::uint64_t>());

    // The first block decrypts to a zip local file header.
    auto head = h.run<result<std::vector<std::uint8_t>>>([&]() {
      return session.fetch_range(b->file(), {0, 4096});
    });
    REQUIRE_OK(head);
    const auto text = decrypt(*b, *head);
    CHECK(std::string(text.begin(), text.begin() + 4) == std::string("PK\x03\x04", 4));
  }
}

TEST_CASE("the served build is the truth: served_other, not_hosted, bad versions",
          "[client][sim]") {
  auto& sim = shared_sim();
  const auto d = GENERATE(dialect::smart2, dialect::legacy);
  INFO(dialect_name(d));
  harness h(sim, d);
  fus_session session(h.client);

  auto old = h.run<result<build_info>>([&]() {
    return session.resolve("SM-A207F", "SER",
                           "A207FXXU2BUB3_A207FOXM2BUB3_A207FXXU2BUB3_A207FXXU2BUB3");
  });
  REQUIRE_FALSE(old);
  CHECK(old.error().is(errc::served_other));
  CHECK(old.error().served_version == "A207FXXU2CUI2/A207FOXM2CUI2/A207FXXU2CUI2/A207FXXU2CUI2");

  auto gone = h.run<result<build_info>>(
      [&]() { return session.resolve("SM-A207F", "SER", "A207FXXU1ATH3"); });
  REQUIRE_FALSE(gone);
  CHECK(gone.error().is(errc::not_hosted));

  auto unlisted = h.run<result<build_info>>(
      [&]() { return session.resolve("SM-A207F", "SER", "A207FXXU9ZZZ9"); });
  REQUIRE_FALSE(unlisted);
  CHECK(unlisted.error().is(errc::not_found));

  auto malformed =
      h.run<result<build_info>>([&]() { return session.resolve("SM-A207F", "SER", "A/B"); });
  REQUIRE_FALSE(malformed);
  CHECK(malformed.error().is(errc::bad_version));

  // Upstream answers 400 to a version it does not know.
  auto unknown = h.run<result<build_info>>([&]() {
    return session.resolve("SM-A207F", "SER",
                           "A207FXXU9ZZZ9/A207FOXM9ZZZ9/A207FXXU9ZZZ9/A207FXXU9ZZZ9");
  });
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().is(errc::bad_version));
}

TEST_CASE("faults: 401 bursts are recovered, firewall pages and statuses are typed",
          "[client][sim]") {
  auto& sim = shared_sim();
  const auto d = GENERATE(dialect::smart2, dialect::legacy);
  INFO(dialect_name(d));
  harness h(sim, d);

  SECTION("one 401 on BinaryInform: fresh nonce, retry, success") {
    fus_session session(h.client);
    h.run<void>([&]() { return h.control.arm("auth401@inform*1"); });
    auto b =
        h.run<result<build_info>>([&]() { return session.resolve("SM-A207F", "SER", "latest"); });
    REQUIRE_OK(b);
  }
  SECTION("two 401s on BinaryInform: auth") {
    fus_session session(h.client);
    h.run<void>([&]() { return h.control.arm("auth401@inform*2"); });
    auto b =
        h.run<result<build_info>>([&]() { return session.resolve("SM-A207F", "SER", "latest"); });
    REQUIRE_FALSE(b);
    CHECK(b.error().is(errc::auth));
  }
  SECTION("a 401 burst on parallel downloads: one re-authorisation, every range arrives") {
    fus_session session(h.client);
    auto b =
        h.run<result<build_info>>([&]() { return session.resolve("SM-A207F", "SER", "latest"); });
    REQUIRE_OK(b);
    const auto file = b->file();
    // Authorise first, and open three pooled connections, so the three GETs of the burst
    // leave at once: a GET that still had to connect could reach the simulator after
    // another's retry, which would then take the burst's last 401.
    auto fetch_three = [&]() {
      std::vector<std::future<result<std::vector<std::uint8_t>>>> parts;
      for (std::uint64_t i = 0; i < 3; ++i)
        parts.push_back(net::co_spawn(
            h.ioc, session.fetch_range(file, {i * 65536, (i + 1) * 65536}), net::use_future));
      h.ioc.restart();
      h.ioc.run();
      return parts;
    };
    for (auto& p : fetch_three()) {
      auto r = p.get();
      REQUIRE_OK(r);
    }
    const auto generation = session.auth_generation();
    h.run<void>([&]() { return h.control.arm("auth401@download*3"); });
    auto parts = fetch_three();
    for (auto& p : parts) {
      auto r = p.get();
      REQUIRE_OK(r);
      CHECK(r->size() == 65536);
    }
    CHECK(session.auth_generation() == generation + 1);
  }
  SECTION("firewall page on BinaryInform: firewall; the next request works") {
    fus_session session(h.client);
    h.run<void>([&]() { return h.control.arm("firewall@inform*1"); });
    auto b =
        h.run<result<build_info>>([&]() { return session.resolve("SM-A207F", "SER", "latest"); });
    REQUIRE_FALSE(b);
    CHECK(b.error().is(errc::firewall));
    auto again =
        h.run<result<build_info>>([&]() { return session.resolve("SM-A207F", "SER", "latest"); });
    REQUIRE_OK(again);
  }
  SECTION("firewall page on GenerateNonce: firewall") {
    fus_session session(h.client);
    h.run<void>([&]() { return h.control.arm("firewall@nonce*1"); });
    auto n = h.run<result<void>>([&]() { return session.generate_nonce(); });
    REQUIRE_FALSE(n);
    CHECK(n.error().is(errc::firewall));
  }
  SECTION("503 with Retry-After on a range: rate_limited") {
    fus_session session(h.client);
    auto b =
        h.run<result<build_info>>([&]() { return session.resolve("SM-A207F", "SER", "latest"); });
    REQUIRE_OK(b);
    h.run<void>([&]() { return h.control.arm("status=503@download*1"); });
    auto r = h.run<result<std::vector<std::uint8_t>>>([&]() {
      return session.fetch_range(b->file(), {0, 16});
    });
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::rate_limited));
    CHECK(r.error().retry_after == 1s);
  }
  SECTION("500 on BinaryInform: upstream_status with the status kept") {
    fus_session session(h.client);
    h.run<void>([&]() { return h.control.arm("status=500@inform*1"); });
    auto b =
        h.run<result<build_info>>([&]() { return session.resolve("SM-A207F", "SER", "latest"); });
    REQUIRE_FALSE(b);
    INFO(b.error().message());
    CHECK(b.error().is(errc::upstream_status));
    CHECK(b.error().http_status == 500);
  }
}

TEST_CASE("range reads: chunks as they arrive, drops reported with the count, resume",
          "[client][sim]") {
  auto& sim = shared_sim();
  const auto d = GENERATE(dialect::smart2, dialect::legacy);
  INFO(dialect_name(d));
  harness h(sim, d);
  fus_session session(h.client);
  auto b =
      h.run<result<build_info>>([&]() { return session.resolve("SM-A207F", "SER", "latest"); });
  REQUIRE_OK(b);
  const auto file = b->file();
  const byte_range range{1 << 20, 3 << 20};

  // Reference bytes, read in small chunks through range_reader.
  auto whole = h.run<result<std::vector<std::uint8_t>>>(
      [&]() -> net::awaitable<result<std::vector<std::uint8_t>>> {
        auto reader = co_await session.open_range(file, range);
        if (!reader) co_return reader.error();
        std::vector<std::uint8_t> out;
        std::array<std::uint8_t, 7000> chunk;  // not a divisor of anything on purpose
        for (;;) {
          auto n = co_await reader->read_some(chunk);
          if (!n) co_return n.error();
          if (*n == 0) break;
          out.insert(out.end(), chunk.begin(), chunk.begin() + *n);
        }
        co_return out;
      });
  REQUIRE_OK(whole);
  REQUIRE(whole->size() == range.size());

  SECTION("a dropped connection reports the bytes received; the rest resumes from there") {
    h.run<void>([&]() { return h.control.arm("drop-after=300000@download*1"); });
    std::vector<std::uint8_t> got;
    auto dropped = h.run<result<std::uint64_t>>([&]() -> net::awaitable<result<std::uint64_t>> {
      auto reader = co_await session.open_range(file, range);
      if (!reader) co_return reader.error();
      std::array<std::uint8_t, 65536> chunk;
      for (;;) {
        auto n = co_await reader->read_some(chunk);
        if (!n) co_return n.error();
        if (*n == 0) co_return reader->received();
        got.insert(got.end(), chunk.begin(), chunk.begin() + *n);
      }
    });
    REQUIRE_FALSE(dropped);
    CHECK(dropped.error().is(errc::dropped));
    CHECK(dropped.error().received == 300000);
    CHECK(got.size() == 300000);

    auto rest = h.run<result<std::vector<std::uint8_t>>>([&]() {
      return session.fetch_range(file, {range.begin + got.size(), range.end});
    });
    REQUIRE_OK(rest);
    got.insert(got.end(), rest->begin(), rest->end());
    CHECK(got == *whole);
  }
  SECTION("a truncated body (Content-Length promised more) is a drop too") {
    h.run<void>([&]() { return h.control.arm("truncate@download*1"); });
    auto r = h.run<result<std::vector<std::uint8_t>>>(
        [&]() { return session.fetch_range(file, range); });
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::dropped));
    CHECK(r.error().received == range.size() / 2);
  }
  SECTION("ranges outside the file are refused before going upstream") {
    auto r = h.run<result<std::vector<std::uint8_t>>>([&]() {
      return session.fetch_range(file, {file.size - 16, file.size + 16});
    });
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::invalid_argument));
  }
  SECTION("keep-alive: the range GETs reuse pooled connections") {
    const auto opened = h.client.http().connections_opened();
    for (int i = 0; i < 5; ++i) {
      auto r = h.run<result<std::vector<std::uint8_t>>>([&]() {
        return session.fetch_range(file, {0, 16});
      });
      REQUIRE_OK(r);
    }
    CHECK(h.client.http().connections_opened() == opened);
  }
}

TEST_CASE("timeouts and unreachable upstreams are typed", "[client][sim]") {
  auto& sim = shared_sim();
  SECTION("slow first byte beyond the read timeout: timeout") {
    http_options fast;
    fast.read_timeout = 300ms;
    harness h(sim, dialect::smart2, fast);
    fus_session session(h.client);
    h.run<void>([&]() { return h.control.arm("slow-first-byte=2s@nonce*1"); });
    auto n = h.run<result<void>>([&]() { return session.generate_nonce(); });
    REQUIRE_FALSE(n);
    CHECK(n.error().is(errc::timeout));
  }
  SECTION("nobody listening: unreachable") {
    net::io_context ioc;
    fus_config c;
    c.fus_url = c.cloud_url = c.fota_url = "http://127.0.0.1:1/";
    fus_client client(ioc.get_executor(), c);
    fus_session session(client);
    auto n = run<result<void>>(ioc, [&]() { return session.generate_nonce(); });
    REQUIRE_FALSE(n);
    CHECK(n.error().is(errc::unreachable));
  }
}

TEST_CASE("legacy IMEI: 408 without one is imei_required; a configured one works",
          "[client][sim]") {
  sim_process sim({"--require-imei"});
  {
    harness h(sim, dialect::legacy);
    fus_session session(h.client);
    auto b =
        h.run<result<build_info>>([&]() { return session.resolve("SM-A207F", "SER", "latest"); });
    REQUIRE_FALSE(b);
    CHECK(b.error().is(errc::imei_required));
  }
  {
    fus_config imei;
    imei.imei_by_model["SM-A207F"] = "490154203237518";
    harness h(sim, dialect::legacy, {}, imei);
    fus_session session(h.client);
    auto b =
        h.run<result<build_info>>([&]() { return session.resolve("SM-A207F", "SER", "latest"); });
    REQUIRE_OK(b);
  }
  {
    fus_config serial;
    serial.default_imei = "R58M12ABCDE";
    harness h(sim, dialect::legacy, {}, serial);
    fus_session session(h.client);
    auto b =
        h.run<result<build_info>>([&]() { return session.resolve("SM-G990B", "BTU", "latest"); });
    REQUIRE_OK(b);
  }
}

TEST_CASE("legacy: a wrong key set is its own (permanent) error", "[client][sim]") {
  auto& sim = shared_sim();
  net::io_context ioc;
  auto c = config_for(sim, dialect::legacy);
  c.legacy_keys = *fusproxy::crypto::legacy_keys_from_name("2020");
  fus_client client(ioc.get_executor(), c);
  fus_session session(client);
  auto n = run<result<void>>(ioc, [&]() { return session.generate_nonce(); });
  REQUIRE_FALSE(n);
  CHECK(n.error().is(errc::wrong_key_set));
}
