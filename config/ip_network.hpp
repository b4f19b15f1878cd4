#pragma once
// IP addresses and networks (CIDR) as plain values, for --trusted-proxy. Both families
// share one form: an IPv4 address is kept as IPv4-mapped IPv6 (::ffff:a.b.c.d), so an
// IPv4 peer seen on a dual-stack socket matches IPv4 networks without a special case.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fusproxy::config {

struct ip_address {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;  // written as a.b.c.d (also when given as ::ffff:a.b.c.d)

  friend bool operator==(const ip_address&, const ip_address&) = default;
};

struct ip_network {
  ip_address base;          // host bits cleared
  unsigned prefix_128 = 0;  // prefix length over the 128-bit form (IPv4 /8 is 104)

  bool contains(const ip_address& a) const;
  unsigned prefix() const { return base.v4 ? prefix_128 - 96 : prefix_128; }
  friend bool operator==(const ip_network&, const ip_network&) = default;
};

// A numeric IPv4 or IPv6 address ("10.0.0.1", "::1", "::ffff:10.0.0.1"); no brackets,
// ports or zone ids.
std::optional<ip_address> parse_ip_address(std::string_view text);

// ADDRESS or ADDRESS/PREFIX (0-32 for IPv4, 0-128 for IPv6); a bare address is a /32 or
// /128. Bits past the prefix are ignored ("10.1.2.3/8" is 10.0.0.0/8).
std::optional<ip_network> parse_ip_network(std::string_view text);

std::string to_string(const ip_address& a);  // canonical: "10.0.0.1", "2001:db8::1"
std::string to_string(const ip_network& n);  // "10.0.0.0/8", "::1/128"

}  // namespace fusproxy::config
