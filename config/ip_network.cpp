#include "config/ip_network.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace fusproxy::config {
namespace {

constexpr std::array<std::uint8_t, 12> v4_mapped_prefix = {0, 0, 0, 0, 0,    0,
                                                           0, 0, 0, 0, 0xff, 0xff};

bool is_v4_mapped(const std::array<std::uint8_t, 16>& b) {
  return std::memcmp(b.data(), v4_mapped_prefix.data(), v4_mapped_prefix.size()) == 0;
}

}  // namespace

bool ip_network::contains(const ip_address& a) const {
  const unsigned whole = prefix_128 / 8;
  if (std::memcmp(a.bytes.data(), base.bytes.data(), whole) != 0) return false;
  const unsigned rest = prefix_128 % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[whole] & mask) == base.bytes[whole];
}

std::optional<ip_address> parse_ip_address(std::string_view text) {
  // inet_pton wants a terminated string; anything longer than the longest form is not one.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  ip_address out;
  in_addr a4{};
  if (inet_pton(AF_INET, buf, &a4) == 1) {
    std::memcpy(out.bytes.data(), v4_mapped_prefix.data(), v4_mapped_prefix.size());
    std::memcpy(out.bytes.data() + 12, &a4, 4);
    out.v4 = true;
    return out;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, buf, &a6) != 1) return std::nullopt;
  std::memcpy(out.bytes.data(), &a6, 16);
  out.v4 = is_v4_mapped(out.bytes);
  return out;
}

std::optional<ip_network> parse_ip_network(std::string_view text) {
  const auto slash = text.find('/');
  const auto address_text = text.substr(0, slash);
  const auto address = parse_ip_address(address_text);
  if (!address) return std::nullopt;
  // The prefix counts bits of the form written: ::ffff:0:0/96 is an IPv6 prefix.
  const bool written_v4 = address_text.find(':') == std::string_view::npos;
  const unsigned max = written_v4 ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    const auto* end = digits.data() + digits.size();
    const auto [ptr, ec] = std::from_chars(digits.data(), end, prefix);
    if (digits.empty() || digits.size() > 3 || ec != std::errc{} || ptr != end || prefix > max)
      return std::nullopt;
  }
  ip_network n;
  n.base = *address;
  n.prefix_128 = written_v4 ? prefix + 96 : prefix;
  for (unsigned bit = n.prefix_128; bit < 128; ++bit)
    n.base.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  // Shown as IPv4 only when the whole network is IPv4 (::ffff:0:0/80 is not).
  n.base.v4 = n.prefix_128 >= 96 && is_v4_mapped(n.base.bytes);
  return n;
}

std::string to_string(const ip_address& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (a.v4) return inet_ntop(AF_INET, a.bytes.data() + 12, buf, sizeof buf);
  return inet_ntop(AF_INET6, a.bytes.data(), buf, sizeof buf);
}

std::string to_string(const ip_network& n) {
  return to_string(n.base) + "/" + std::to_string(n.prefix());
}

}  // namespace fusproxy::config
