#include "http/client_address.hpp"

#include <algorithm>
#include <optional>

namespace fusproxy::server {
namespace {

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") + 1 - first);
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 5 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// One X-Forwarded-For entry: an address, optionally bracketed (IPv6) or with a port.
std::optional<config::ip_address> parse_entry(std::string_view e) {
  if (!e.empty() && e.front() == '[') {
    const auto close = e.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const auto after = e.substr(close + 1);
    if (!after.empty() && !(after.front() == ':' && all_digits(after.substr(1))))
      return std::nullopt;
    const auto inside = e.substr(1, close - 1);
    if (inside.find(':') == std::string_view::npos) return std::nullopt;  // [1.2.3.4]
    return config::parse_ip_address(inside);
  }
  // One colon: IPv4 with a port (IPv6 has at least two).
  if (const auto colon = e.find(':');
      colon != std::string_view::npos && e.find(':', colon + 1) == std::string_view::npos) {
    if (!all_digits(e.substr(colon + 1))) return std::nullopt;
    const auto a = config::parse_ip_address(e.substr(0, colon));
    if (!a || !a->v4) return std::nullopt;
    return a;
  }
  return config::parse_ip_address(e);
}

bool trusted(const config::ip_address& a, std::span<const config::ip_network> networks) {
  return std::any_of(networks.begin(), networks.end(),
                     [&](const config::ip_network& n) { return n.contains(a); });
}

}  // namespace

std::string client_address(std::string_view peer, std::string_view forwarded_for,
                           std::span<const config::ip_network> trusted_proxies) {
  if (trusted_proxies.empty()) return std::string(peer);
  // A link-local peer carries its zone ("fe80::1%eth0"); the zone plays no part here.
  const auto peer_address = config::parse_ip_address(peer.substr(0, peer.find('%')));
  if (!peer_address || !trusted(*peer_address, trusted_proxies)) return std::string(peer);

  std::optional<config::ip_address> client;  // the last entry accepted; none yet: the peer
  std::string_view rest = forwarded_for;
  while (!rest.empty()) {
    const auto comma = rest.rfind(',');
    const auto entry = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
    if (entry.empty()) continue;  // empty list elements are allowed (RFC 9110, 5.6.1)
    const auto a = parse_entry(entry);
    if (!a) break;
    client = a;
    if (!trusted(*a, trusted_proxies)) break;
  }
  return client ? config::to_string(*client) : std::string(peer);
}

}  // namespace fusproxy::server
