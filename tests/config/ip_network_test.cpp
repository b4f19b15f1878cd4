#include "config/ip_network.hpp"

#include <catch2/catch.hpp>

using namespace fusproxy::config;

namespace {

ip_network net(const char* text) {
  const auto n = parse_ip_network(text);
  REQUIRE(n);
  return *n;
}

ip_address addr(const char* text) {
  const auto a = parse_ip_address(text);
  REQUIRE(a);
  return *a;
}

}  // namespace

TEST_CASE("ip addresses: both families, canonical text") {
  CHECK(to_string(addr("10.0.0.1")) == "10.0.0.1");
  CHECK(addr("10.0.0.1").v4);
  CHECK(to_string(addr("2001:DB8:0:0::1")) == "2001:db8::1");
  CHECK_FALSE(addr("::1").v4);
  // IPv4-mapped IPv6 is the IPv4 address.
  CHECK(addr("::ffff:10.0.0.1") == addr("10.0.0.1"));
  CHECK(to_string(addr("::ffff:10.0.0.1")) == "10.0.0.1");
  for (const char* bad : {"", "10.0.0", "10.0.0.256", "10.0.0.1 ", " 10.0.0.1", "[::1]", "::1%lo",
                          "10.0.0.1:80", "example.com", "1:2:3:4:5:6:7:8:9", "unknown"}) {
    INFO(bad);
    CHECK_FALSE(parse_ip_address(bad));
  }
  CHECK_FALSE(parse_ip_address(std::string(100, '1')));
}

TEST_CASE("ip networks: CIDR, bare addresses, prefix bounds") {
  CHECK(to_string(net("10.0.0.0/8")) == "10.0.0.0/8");
  CHECK(to_string(net("127.0.0.1")) == "127.0.0.1/32");
  CHECK(to_string(net("::1")) == "::1/128");
  CHECK(to_string(net("fd00::/8")) == "fd00::/8");
  CHECK(to_string(net("0.0.0.0/0")) == "0.0.0.0/0");
  CHECK(to_string(net("::/0")) == "::/0");
  CHECK(to_string(net("10.1.2.3/8")) == "10.0.0.0/8");  // host bits dropped
  CHECK(to_string(net("172.16.0.0/12")) == "172.16.0.0/12");
  CHECK(to_string(net("10.0.0.1/32")) == "10.0.0.1/32");
  CHECK(to_string(net("2001:db8::1/128")) == "2001:db8::1/128");
  // A prefix written on the IPv6 form counts IPv6 bits.
  CHECK(net("::ffff:10.0.0.0/104") == net("10.0.0.0/8"));
  CHECK(to_string(net("::ffff:0:0/96")) == "0.0.0.0/0");
  CHECK(to_string(net("::ffff:0:0/80")) == "::/80");

  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8",
                          "10.0.0.0/8/8", "10.0.0.0/a", "10.0.0.0/ 8", "::/129", "::1/1000",
                          "10.0.0/8", "fd00::/08x", "[::1]/128", "localhost", "10.0.0.0/8,"}) {
    INFO(bad);
    CHECK_FALSE(parse_ip_network(bad));
  }
}

TEST_CASE("ip networks: membership") {
  const auto ten = net("10.0.0.0/8");
  CHECK(ten.contains(addr("10.0.0.1")));
  CHECK(ten.contains(addr("10.255.255.255")));
  CHECK_FALSE(ten.contains(addr("11.0.0.0")));
  CHECK_FALSE(ten.contains(addr("9.255.255.255")));
  CHECK(ten.contains(addr("::ffff:10.1.2.3")));  // a dual-stack socket's IPv4 peer
  CHECK_FALSE(ten.contains(addr("::a01:203")));  // IPv4-compatible is not IPv4

  const auto twelve = net("172.16.0.0/12");
  CHECK(twelve.contains(addr("172.31.255.255")));
  CHECK_FALSE(twelve.contains(addr("172.32.0.0")));
  CHECK_FALSE(twelve.contains(addr("172.15.255.255")));

  const auto one = net("127.0.0.1");
  CHECK(one.contains(addr("127.0.0.1")));
  CHECK_FALSE(one.contains(addr("127.0.0.2")));

  const auto ula = net("fd00::/8");
  CHECK(ula.contains(addr("fd12:3456::1")));
  CHECK_FALSE(ula.contains(addr("fe80::1")));
  CHECK_FALSE(ula.contains(addr("10.0.0.1")));

  const auto odd = net("2001:db8::/33");
  CHECK(odd.contains(addr("2001:db8:7fff::1")));
  CHECK_FALSE(odd.contains(addr("2001:db8:8000::1")));

  CHECK(net("0.0.0.0/0").contains(addr("203.0.113.9")));
  CHECK_FALSE(net("0.0.0.0/0").contains(addr("2001:db8::1")));
  CHECK(net("::1").contains(addr("::1")));
  CHECK_FALSE(net("::1").contains(addr("127.0.0.1")));
}
