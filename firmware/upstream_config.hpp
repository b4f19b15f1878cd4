#pragma once
// The upstream client's configuration from the one typed settings (dialect, URLs, keys,
// IMEIs, TLS, timeouts): shared by the service's resolver and the one-shot CLI commands.
#include "config/settings.hpp"
#include "fetch/fetch_job.hpp"
#include "upstream/core/upstream_retry.hpp"
#include "upstream/fus_client.hpp"

namespace fusproxy::server {

// Throws std::invalid_argument on a bad --legacy-keys (start-up only).
upstream::fus_config fus_config_from(const config::settings& s);
upstream::http_options http_options_from(const config::settings& s);
// --connections, --chunk-size, --upstream-max-bps, --retry-base-ms, --retry-attempts.
fetch_options fetch_options_from(const config::settings& s);
// The metadata path's back-off (docs/resolver.md, "Retries"): --retry-base-ms doubling up
// to 4 s (or the base, when that is larger).
upstream::backoff metadata_backoff_from(const config::settings& s);

}  // namespace fusproxy::server
