#pragma once
// Which address a request comes from when reverse proxies stand in front (--trusted-proxy):
// the per-client limits and the access log key on it. Pure: no sockets.
#include <span>
#include <string>
#include <string_view>

#include "config/ip_network.hpp"

namespace fusproxy::server {

// `peer` is the socket's remote address (Asio's text form, e.g. "10.0.0.5", "::1",
// "::ffff:10.0.0.5", "fe80::1%eth0"); `forwarded_for` the X-Forwarded-For value, several
// header lines joined with commas. If the peer is not a trusted proxy the header is
// ignored (anyone can send one) and the peer is the client. Otherwise the list is walked
// from the right, skipping trusted proxies: the first untrusted address is the client; an
// entry that is no address stops the walk at the last address accepted; if every entry is
// trusted, the leftmost is the client. Entries may be "a.b.c.d", "a.b.c.d:port", an IPv6
// address with or without brackets, or "[v6]:port". An address taken from the header is
// returned in canonical form ("2001:db8::1", "10.0.0.1" for ::ffff:10.0.0.1); the peer as
// given.
std::string client_address(std::string_view peer, std::string_view forwarded_for,
                           std::span<const config::ip_network> trusted_proxies);

}  // namespace fusproxy::server
