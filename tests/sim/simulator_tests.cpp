// The in-process simulator (what `fusproxy --demo` uses): starts on a caller's io_context,
// reports its port, answers, and stops so that io_context::run() returns.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "sim/simulator.hpp"

namespace net = boost::asio;
using tcp = net::ip::tcp;
using fusproxy::sim::simulator;
using fusproxy::sim::simulator_options;

namespace {

// One blocking HTTP/1.0 exchange; the server closes after answering.
std::string exchange(std::uint16_t port, const std::string& request) {
  net::io_context client;
  tcp::socket socket(client);
  socket.connect({net::ip::make_address("127.0.0.1"), port});
  net::write(socket, net::buffer(request));
  std::string answer;
  boost::system::error_code ec;
  net::read(socket, net::dynamic_buffer(answer), ec);
  return answer;
}

}  // namespace

TEST_CASE("simulator: starts on a given io_context, answers, stops cleanly") {
  net::io_context ioc;
  simulator_options options;
  options.faults = "status=503@fota*1";
  simulator sim(ioc, options);
  REQUIRE(sim.port() != 0);
  CHECK(sim.base_url() == "http://127.0.0.1:" + std::to_string(sim.port()) + "/");
  auto running = std::async(std::launch::async, [&] { ioc.run(); });

  const auto stats = exchange(sim.port(), "GET /_sim/stats HTTP/1.0\r\n\r\n");
  CHECK(stats.starts_with("HTTP/1.1 200"));
  CHECK(stats.find("\"sessions_created\":0") != std::string::npos);

  // The User-Agent working clients send there (strict mode refuses others with 400).
  const std::string fota =
      "GET /firmware/BTU/SM-G990B/version.xml HTTP/1.0\r\nUser-Agent: Kies2.0_FUS\r\n\r\n";
  CHECK(exchange(sim.port(), fota).starts_with("HTTP/1.1 503"));  // the armed fault
  CHECK(exchange(sim.port(), fota).starts_with("HTTP/1.1 200"));  // spent

  REQUIRE_FALSE(sim.arm_faults("status=500@fota"));
  CHECK(exchange(sim.port(), fota).starts_with("HTTP/1.1 500"));
  CHECK(exchange(sim.port(),
                 "GET /firmware/BTU/SM-G990B/version.xml HTTP/1.0\r\n"
                 "User-Agent: SMART 2.0\r\n\r\n")
            .starts_with("HTTP/1.1 400"));  // strict by default, as in --demo
  CHECK(sim.arm_faults("nonsense").has_value());
  sim.set_throttle(1000);
  CHECK(sim.stats_json().find("\"throttle_bps\":1000") != std::string::npos);

  // An idle keep-alive connection must not keep run() alive after stop().
  tcp::socket idle(ioc);
  idle.connect({net::ip::make_address("127.0.0.1"), sim.port()});
  sim.stop();
  REQUIRE(running.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
}

TEST_CASE("simulator: refuses a non-loopback address without allow_remote") {
  net::io_context ioc;
  simulator_options options;
  options.listen_host = "0.0.0.0";
  CHECK_THROWS_WITH(simulator(ioc, options), Catch::Contains("--allow-remote"));
  CHECK(fusproxy::sim::is_loopback_host("127.0.0.1"));
  CHECK(fusproxy::sim::is_loopback_host("::1"));
  CHECK(fusproxy::sim::is_loopback_host("localhost"));
  CHECK(fusproxy::sim::is_loopback_host("127.3.2.1"));
  CHECK_FALSE(fusproxy::sim::is_loopback_host("0.0.0.0"));
  CHECK_FALSE(fusproxy::sim::is_loopback_host("192.168.1.2"));
  CHECK_FALSE(fusproxy::sim::is_loopback_host("example.com"));
}
