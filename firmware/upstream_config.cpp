#include "firmware/upstream_config.hpp"

#include <algorithm>
#include <stdexcept>

#include "crypto/auth.hpp"

namespace fusproxy::server {

upstream::fus_config fus_config_from(const config::settings& s) {
  upstream::fus_config c;
  c.dialect =
      s.dialect == config::dialect::legacy ? protocol::dialect::legacy : protocol::dialect::smart2;
  c.fus_url = s.fus_url;
  c.cloud_url = s.cloud_url;
  c.fota_url = s.fota_url;
  auto keys = crypto::legacy_keys_from_name(s.legacy_keys);
  if (!keys) throw std::invalid_argument("--legacy-keys: " + keys.error().message());
  c.legacy_keys = *keys;
  for (const auto& [model, imei] : s.imei_by_model) c.imei_by_model.emplace(model, imei);
  c.default_imei = s.default_imei;
  return c;
}

upstream::http_options http_options_from(const config::settings& s) {
  upstream::http_options o;
  const std::chrono::milliseconds timeout(std::uint64_t{s.upstream_timeout} * 1000);
  o.connect_timeout = std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(15));
  o.read_timeout = timeout;
  o.request_timeout = 2 * timeout;  // a whole XML exchange: connect + write + read
  o.tls_verify = s.tls_verify;
  o.ca_file = s.ca_file;
  return o;
}

fetch_options fetch_options_from(const config::settings& s) {
  fetch_options f;
  f.connections = s.connections;
  f.connections_start = std::min(s.connections_start, s.connections);
  f.chunk_size = s.chunk_size;
  f.chunk_size_max = std::max(s.chunk_size_max, s.chunk_size);
  f.max_bps = s.upstream_max_bps;
  f.retry.base = std::chrono::milliseconds(s.retry_base_ms);
  f.retry.attempts = s.retry_attempts;
  if (s.test_disk_full_after)
    f.test_write_budget = std::make_shared<std::atomic<std::uint64_t>>(s.test_disk_full_after);
  return f;
}

}  // namespace fusproxy::server

namespace fusproxy::server {

upstream::backoff metadata_backoff_from(const config::settings& s) {
  const std::chrono::milliseconds base(s.retry_base_ms);
  return {base, std::max<std::chrono::milliseconds>(base, std::chrono::seconds(4))};
}

}  // namespace fusproxy::server
