#include "http/client_address.hpp"

#include <catch2/catch.hpp>
#include <vector>

using fusproxy::config::ip_network;
using fusproxy::config::parse_ip_network;
using fusproxy::server::client_address;

namespace {

std::vector<ip_network> networks(std::initializer_list<const char*> texts) {
  std::vector<ip_network> out;
  for (const char* t : texts) {
    const auto n = parse_ip_network(t);
    REQUIRE(n);
    out.push_back(*n);
  }
  return out;
}

}  // namespace

TEST_CASE("client address: no trusted proxies, the header is ignored") {
  CHECK(client_address("203.0.113.7", "198.51.100.1", {}) == "203.0.113.7");
  CHECK(client_address("127.0.0.1", "10.0.0.1", {}) == "127.0.0.1");
}

TEST_CASE("client address: an untrusted peer cannot spoof the header") {
  const auto trusted = networks({"10.0.0.0/8"});
  CHECK(client_address("203.0.113.7", "198.51.100.1", trusted) == "203.0.113.7");
  CHECK(client_address("203.0.113.7", "10.0.0.2, 198.51.100.1", trusted) == "203.0.113.7");
  CHECK(client_address("2001:db8::7", "198.51.100.1", trusted) == "2001:db8::7");
  CHECK(client_address("unknown", "198.51.100.1", trusted) == "unknown");
}

TEST_CASE("client address: behind one nginx") {
  const auto trusted = networks({"127.0.0.1"});
  // $proxy_add_x_forwarded_for: the client's own header (if any) plus nginx's peer.
  CHECK(client_address("127.0.0.1", "198.51.100.1", trusted) == "198.51.100.1");
  // A client that sends its own X-Forwarded-For only adds entries on the left.
  CHECK(client_address("127.0.0.1", "6.6.6.6, 198.51.100.1", trusted) == "198.51.100.1");
  CHECK(client_address("127.0.0.1", "  198.51.100.1  ", trusted) == "198.51.100.1");
  // No header: the proxy itself is the client (a health check, a local curl).
  CHECK(client_address("127.0.0.1", "", trusted) == "127.0.0.1");
  CHECK(client_address("127.0.0.1", " , ,", trusted) == "127.0.0.1");
}

TEST_CASE("client address: several trusted hops") {
  const auto trusted = networks({"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"});
  // client -> CDN edge (10.1.1.1) -> ingress (172.17.0.2) -> nginx (192.168.1.1) -> fusproxy
  CHECK(client_address("192.168.1.1", "198.51.100.1, 10.1.1.1, 172.17.0.2", trusted) ==
        "198.51.100.1");
  // Header lines joined with commas, empty elements skipped.
  CHECK(client_address("192.168.1.1", "198.51.100.1,,10.1.1.1,172.17.0.2", trusted) ==
        "198.51.100.1");
  // Every hop trusted: the leftmost is the client.
  CHECK(client_address("192.168.1.1", "10.9.9.9, 10.1.1.1", trusted) == "10.9.9.9");
  // Left of the first untrusted address nothing is believed.
  CHECK(client_address("192.168.1.1", "10.9.9.9, 203.0.113.5, 10.1.1.1", trusted) == "203.0.113.5");
}

TEST_CASE("client address: garbage stops the walk") {
  const auto trusted = networks({"10.0.0.0/8"});
  CHECK(client_address("10.0.0.1", "garbage", trusted) == "10.0.0.1");
  CHECK(client_address("10.0.0.1", "198.51.100.1, unknown", trusted) == "10.0.0.1");
  CHECK(client_address("10.0.0.1", "198.51.100.1, unknown, 10.0.0.2", trusted) == "10.0.0.2");
  CHECK(client_address("10.0.0.1", "198.51.100.1, 10.0.0.300", trusted) == "10.0.0.1");
  CHECK(client_address("10.0.0.1", "198.51.100.1 10.0.0.2", trusted) == "10.0.0.1");
  CHECK(client_address("10.0.0.1", "1.2.3.4:notaport", trusted) == "10.0.0.1");
  CHECK(client_address("10.0.0.1", "[2001:db8::1", trusted) == "10.0.0.1");
  CHECK(client_address("10.0.0.1", "[1.2.3.4]", trusted) == "10.0.0.1");
  CHECK(client_address("10.0.0.1", "\"198.51.100.1\"", trusted) == "10.0.0.1");
  CHECK(client_address("10.0.0.1", std::string(20000, ','), trusted) == "10.0.0.1");
  CHECK(client_address("10.0.0.1", std::string(20000, 'x'), trusted) == "10.0.0.1");
}

TEST_CASE("client address: IPv6 entries and peers") {
  const auto trusted = networks({"::1", "fd00::/8", "127.0.0.1"});
  CHECK(client_address("::1", "2001:db8::1", trusted) == "2001:db8::1");
  CHECK(client_address("::1", "[2001:db8::1]", trusted) == "2001:db8::1");
  CHECK(client_address("::1", "[2001:db8::1]:4711", trusted) == "2001:db8::1");
  CHECK(client_address("::1", "2001:DB8:0::1", trusted) == "2001:db8::1");  // canonical
  CHECK(client_address("::1", "198.51.100.1:4711", trusted) == "198.51.100.1");
  CHECK(client_address("fd12::5", "2001:db8::1, fd00::1", trusted) == "2001:db8::1");
  CHECK(client_address("fd12::5", "2001:db8::1, [fd00::1]:80", trusted) == "2001:db8::1");
  CHECK(client_address("2001:db8::99", "2001:db8::1", trusted) == "2001:db8::99");
  CHECK(client_address("fe80::1%eth0", "2001:db8::1", networks({"fe80::/10"})) == "2001:db8::1");
}

TEST_CASE("client address: IPv4-mapped peers match IPv4 networks") {
  const auto trusted = networks({"127.0.0.1", "10.0.0.0/8"});
  CHECK(client_address("::ffff:127.0.0.1", "198.51.100.1", trusted) == "198.51.100.1");
  CHECK(client_address("::ffff:10.2.3.4", "198.51.100.1", trusted) == "198.51.100.1");
  // An untrusted mapped peer stays as the socket gave it.
  CHECK(client_address("::ffff:203.0.113.7", "198.51.100.1", trusted) == "::ffff:203.0.113.7");
  // Mapped entries in the header are the IPv4 address (one bucket for both spellings).
  CHECK(client_address("127.0.0.1", "::ffff:198.51.100.1", trusted) == "198.51.100.1");
  CHECK(client_address("127.0.0.1", "198.51.100.1, ::ffff:10.0.0.9", trusted) == "198.51.100.1");
}
