#include "upstream/fus_client.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <stdexcept>

#include <boost/asio/awaitable.hpp>

#include "crypto/ecb.hpp"
#include "protocol/ascii.hpp"
#include "protocol/xml.hpp"
#include "upstream/core/upstream_retry.hpp"
#include "upstream/fus_channel.hpp"

namespace fusproxy::upstream {

namespace net = boost::asio;

namespace {

using protocol::ascii::iequals;
using protocol::ascii::to_upper;

// Model and region go into URL paths and XML: letters, digits and a few separators only.
bool valid_model(std::string_view m) {
  return !m.empty() && m.size() <= 32 && std::all_of(m.begin(), m.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '+' ||
           c == '.';
  });
}
bool valid_region(std::string_view r) {
  return r.size() >= 2 && r.size() <= 8 && std::all_of(r.begin(), r.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c));
         });
}

bool is_pda_only(std::string_view v) {
  return v.find('/') == std::string_view::npos && v.find('_') == std::string_view::npos &&
         v.find("%2F") == std::string_view::npos && v.find("%2f") == std::string_view::npos;
}

std::string first_part(std::string_view v) {
  return std::string(v.substr(0, v.find('/')));
}

}  // namespace

// ---- fus_client ----

namespace {
base_url parse_or_throw(std::string_view url, const char* setting) {
  auto u = parse_base_url(url);
  if (!u) throw std::invalid_argument(std::string(setting) + ": " + u.error().message());
  return *u;
}
}  // namespace

fus_client::fus_client(net::any_io_executor executor, fus_config config, http_options http,
                       exchange_observer observer)
    : config_(std::move(config)),
      observer_(std::move(observer)),
      http_(std::move(executor), std::move(http)),
      fus_(parse_or_throw(config_.fus_url, "fus-url")),
      cloud_(parse_or_throw(config_.cloud_url, "cloud-url")),
      fota_(parse_or_throw(config_.fota_url, "fota-url")) {
  if (config_.legacy_keys.key1.empty()) {
    auto keys = crypto::legacy_keys_from_name("2026");
    if (!keys) throw std::invalid_argument("legacy-keys: built-in 2026 set unavailable");
    config_.legacy_keys = *keys;
  }
  if (config_.legacy_keys.key1.size() != 32 || config_.legacy_keys.key2.size() != 16)
    throw std::invalid_argument("legacy-keys: KEY_1 must have 32 and KEY_2 16 characters");
}

std::string_view fus_client::imei_for(std::string_view model) const {
  if (auto it = config_.imei_by_model.find(to_upper(model)); it != config_.imei_by_model.end())
    return it->second;
  return config_.default_imei;
}

std::string_view to_string(encryption e) {
  return e == encryption::enc4 ? "enc4" : "enc2";
}

download_file build_info::file() const {
  download_file f;
  f.path = inform.model_path + inform.binary_name;
  f.size = inform.byte_size;
  f.inform.model = model;
  f.inform.region = region;
  f.inform.version = version;
  f.init.binary_name = inform.binary_name;
  f.init.served_version = version;
  f.init.local_code = inform.local_code.empty() ? region : inform.local_code;
  f.init.model_type = inform.model_type;
  return f;
}

// ---- range_reader ----

range_reader::range_reader(http_body_stream body, crypto::byte_range range)
    : body_(std::move(body)), range_(range) {}

net::awaitable<result<std::size_t>> range_reader::read_some(std::span<std::uint8_t> buffer) {
  const auto expected = range_.size();
  if (buffer.empty()) co_return std::size_t{0};
  if (body_.done()) {
    if (body_.received() == expected) co_return std::size_t{0};
    auto f =
        make_failure(errc::dropped, "range body ended after " + std::to_string(body_.received()) +
                                        " of " + std::to_string(expected) + " bytes");
    f.received = body_.received();
    co_return f;
  }
  auto n = co_await body_.read_some(buffer);
  if (!n) co_return n.error();
  if (body_.received() > expected) {
    auto f = make_failure(errc::bad_range,
                          "range body longer than " + std::to_string(expected) + " bytes");
    f.received = body_.received();
    co_return f;
  }
  if (*n == 0 && body_.received() < expected) {
    auto f =
        make_failure(errc::dropped, "range body ended after " + std::to_string(body_.received()) +
                                        " of " + std::to_string(expected) + " bytes");
    f.received = body_.received();
    co_return f;
  }
  co_return *n;
}

// ---- fus_session: the FUS operations, asked through the session's channel ----

namespace {

// SmartHistory in this session: after GenerateNonce, with its cookie (all smart2 clients).
net::awaitable<result<std::vector<protocol::version_entry>>> smart_history(
    fus_channel& ch, const std::string& model, const std::string& region) {
  if (auto n = co_await ch.ensure_nonce(); !n) co_return n.error();
  auto r = co_await ch.send(ch.core().smart_history(model, region, crypto::make_client_nonce()));
  if (!r) co_return r.error();
  if (!is_success(r->status))
    co_return status_failure(service::fus, r->status, r->header("Retry-After"), r->body);
  // Success has an empty Results/Status; a failing one (an XML 401: the signature was
  // refused) is no empty version list.
  if (auto status = protocol::parse_status(r->body); status && !status->empty())
    if (auto f = map_fus_status(*status)) co_return *f;
  auto list = protocol::parse_smart_history(r->body);
  if (!list) co_return from_protocol_error(list.error(), "SmartHistory answer");
  co_return std::move(*list);
}

net::awaitable<result<protocol::fota_versions>> fota(fus_channel& ch, const std::string& model,
                                                     const std::string& region) {
  auto r = co_await ch.send(ch.core().fota(model, region));
  if (!r) co_return r.error();
  if (!is_success(r->status)) {
    auto f = status_failure(service::fota, r->status, r->header("Retry-After"), r->body);
    if (protocol::is_fota_access_denied(r->body)) {
      f.code = make_error_code(errc::not_found);
      f.detail = "FOTA: AccessDenied (unknown model/region)";
    }
    co_return f;
  }
  auto parsed = protocol::parse_fota_versions(r->body);
  if (!parsed) co_return from_protocol_error(parsed.error(), "FOTA version.xml");
  co_return std::move(*parsed);
}

net::awaitable<result<version_list>> list_versions(fus_channel& ch, std::string_view model_in,
                                                   std::string_view region_in) {
  const auto model = to_upper(model_in);
  const auto region = to_upper(region_in);
  if (!valid_model(model) || !valid_region(region))
    co_return make_failure(errc::invalid_argument, "malformed model or region");

  const auto dialect = ch.core().dialect();
  std::optional<result<std::vector<protocol::version_entry>>> history;
  if (dialect == protocol::dialect::smart2) {
    history = co_await smart_history(ch, model, region);
    // FOTA's "latest" lags behind SmartHistory: a transient SmartHistory failure fails the
    // list (the caller retries) instead of answering from FOTA alone.
    if (!*history && !history->error().is(errc::not_found)) co_return history->error();
  }
  auto fota_list = co_await fota(ch, model, region);

  // A FOTA that failed transiently fails the list too (the resolver retries it: a list
  // without FOTA would lose its versions); one that answered for good (an unknown pair, a
  // refused User-Agent) is left out. SmartHistory's order wins.
  if (!fota_list && is_transient(fota_list.error())) co_return fota_list.error();
  const bool history_ok = history && *history;
  if (!history_ok && !fota_list) {
    if (history && !history->error().is(errc::not_found)) co_return history->error();
    co_return fota_list.error();
  }
  version_list out;
  const std::vector<protocol::version_entry> no_history;
  const protocol::fota_versions no_fota;
  out.versions = protocol::merge_versions(history_ok ? history->value() : no_history,
                                          fota_list ? *fota_list : no_fota);
  if (dialect == protocol::dialect::legacy && fota_list && !fota_list->latest.empty())
    out.latest = fota_list->latest;
  else
    out.latest = protocol::newest_stable(out.versions);
  if (out.versions.empty() && out.latest.empty())
    co_return make_failure(errc::not_found, "no firmware listed for " + model + "/" + region);
  co_return out;
}

net::awaitable<result<build_info>> resolve_build(fus_channel& ch, std::string_view model_in,
                                                 std::string_view region_in,
                                                 std::string_view spec) {
  const auto model = to_upper(model_in);
  const auto region = to_upper(region_in);
  if (!valid_model(model) || !valid_region(region))
    co_return make_failure(errc::invalid_argument, "malformed model or region");

  std::string requested;
  const bool latest = iequals(spec, "latest");
  if (latest || is_pda_only(spec)) {
    if (!latest && (spec.empty() || !valid_model(spec)))
      co_return make_failure(errc::bad_version, "malformed version \"" + std::string(spec) + "\"");
    auto list = co_await list_versions(ch, model, region);
    if (!list) co_return list.error();
    if (latest) {
      requested = list->latest;
      if (requested.empty())
        co_return make_failure(errc::not_found, "no stable firmware for " + model + "/" + region);
    } else {
      const auto pda = to_upper(spec);
      for (const auto& v : list->versions)
        if (first_part(v.version) == pda) {
          requested = v.version;
          break;
        }
      if (requested.empty())
        co_return make_failure(
            errc::not_found,
            "version " + pda + " is not in the version list of " + model + "/" + region);
    }
  } else {
    auto normalised = protocol::normalize_version(spec);
    if (!normalised)
      co_return make_failure(errc::bad_version, "malformed version \"" + std::string(spec) + "\"");
    requested = *normalised;
  }

  const protocol::inform_request inform{model, region, requested, {}};
  auto answer = co_await ch.binary_inform(inform);
  if (!answer) co_return answer.error();
  auto served = protocol::normalize_version(answer->served_version);
  if (!served)
    co_return make_failure(errc::bad_answer, "BinaryInform answer names no valid served version");
  // The served build is the truth: never present it under another version's name. For
  // "latest" no version was named, so the served build is the answer.
  if (*served != requested && !latest) {
    auto f =
        make_failure(errc::served_other, "asked for " + requested + ", upstream serves " + *served);
    f.served_version = *served;
    co_return f;
  }

  build_info b;
  b.model = model;
  b.region = region;
  b.version = *served;
  const auto& name = answer->binary_name;
  if (name.ends_with(".enc4")) {
    b.enc = encryption::enc4;
    if (answer->logic_value.empty())
      co_return make_failure(errc::bad_answer, "enc4 build without LOGIC_VALUE_FACTORY/HOME");
    auto key = crypto::enc4_key(b.version, answer->logic_value);
    if (!key) co_return make_failure(errc::bad_answer, "enc4 key: " + key.error().message());
    b.key = *key;
  } else if (name.ends_with(".enc2")) {
    b.enc = encryption::enc2;
    b.key = crypto::enc2_key(region, model, b.version);
  } else {
    co_return make_failure(errc::bad_answer, "unknown encryption of " + name);
  }
  if (answer->model_path.empty())
    co_return make_failure(errc::bad_answer, "BinaryInform answer has no MODEL_PATH");
  if (answer->byte_size == 0)
    co_return make_failure(errc::bad_answer, "BinaryInform answer has no BINARY_BYTE_SIZE");
  b.inform = std::move(*answer);
  co_return b;
}

net::awaitable<result<range_reader>> open_range_in(fus_channel& ch, const download_file& file,
                                                   crypto::byte_range range) {
  if (range.empty() || (file.size && range.end > file.size) || file.path.empty())
    co_return make_failure(errc::invalid_argument, "range " + std::to_string(range.begin) + "-" +
                                                       std::to_string(range.end) +
                                                       " outside the file");
  if (auto a = co_await ch.ensure_authorised(file); !a) co_return a.error();
  for (int attempt = 0;; ++attempt) {
    const auto seen = ch.generation();
    auto request = ch.core().download(file, range);
    if (!request) co_return request.error();
    auto body = co_await ch.open(std::move(*request));
    if (!body) co_return body.error();
    const auto status = body->status();
    if (status == 401 && attempt == 0) {
      if (auto a = co_await ch.reauthorize(file, seen); !a) co_return a.error();
      continue;
    }
    if (!is_success(status))
      co_return map_http_status(service::download, status, body->header("Retry-After"),
                                std::time(nullptr));
    if (auto ok = check_range_answer(status, body->header("Content-Range"), range, file.size); !ok)
      co_return ok.error();
    if (auto cl = body->content_length(); cl && *cl != range.size()) {
      auto f = make_failure(errc::bad_range, "Content-Length " + std::to_string(*cl) +
                                                 " for a range of " + std::to_string(range.size()) +
                                                 " bytes");
      f.http_status = status;
      co_return f;
    }
    co_return range_reader(std::move(*body), range);
  }
}

// A small ranged GET read whole.
net::awaitable<result<std::vector<std::uint8_t>>> read_range_whole(fus_channel& ch,
                                                                   const download_file& file,
                                                                   crypto::byte_range range) {
  auto reader = co_await open_range_in(ch, file, range);
  if (!reader) co_return reader.error();
  std::vector<std::uint8_t> out(range.size());
  std::size_t filled = 0;
  while (filled < out.size()) {
    auto n = co_await reader->read_some(std::span(out).subspan(filled));
    if (!n) co_return n.error();
    filled += *n;
    if (*n == 0) break;
  }
  if (filled != out.size()) {
    auto f = make_failure(errc::dropped, "short range body");
    f.received = filled;
    co_return f;
  }
  co_return out;
}

}  // namespace

fus_session::fus_session(fus_client& client, std::string request_id)
    : channel_(std::make_unique<fus_channel>(client, std::move(request_id))) {}
fus_session::~fus_session() = default;
fus_session::fus_session(fus_session&&) noexcept = default;
fus_session& fus_session::operator=(fus_session&&) noexcept = default;

net::awaitable<result<void>> fus_session::generate_nonce() {
  co_return co_await channel_->generate_nonce();
}

net::awaitable<result<protocol::inform_answer>> fus_session::binary_inform(std::string model,
                                                                           std::string region,
                                                                           std::string version) {
  const protocol::inform_request req{std::move(model), std::move(region), std::move(version), {}};
  co_return co_await channel_->binary_inform(req);
}

net::awaitable<result<void>> fus_session::init_for_mass(protocol::init_request init) {
  co_return co_await channel_->init_for_mass(init);
}

net::awaitable<result<version_list>> fus_session::versions(std::string model, std::string region) {
  co_return co_await list_versions(*channel_, model, region);
}

net::awaitable<result<build_info>> fus_session::resolve(std::string model, std::string region,
                                                        std::string version_or_latest) {
  co_return co_await resolve_build(*channel_, model, region, version_or_latest);
}

net::awaitable<result<range_reader>> fus_session::open_range(download_file file,
                                                             crypto::byte_range range) {
  co_return co_await open_range_in(*channel_, file, range);
}

net::awaitable<result<std::vector<std::uint8_t>>> fus_session::fetch_range(
    download_file file, crypto::byte_range range) {
  constexpr std::uint64_t max_fetch = 16u << 20;
  if (range.size() > max_fetch)
    co_return make_failure(errc::invalid_argument, "fetch_range is for small ranges");
  const auto started = std::chrono::steady_clock::now();
  auto out = co_await read_range_whole(*channel_, file, range);
  if (const auto& o = channel_->client().observer()) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (out) {
      o("range", nullptr, seconds);
    } else {
      const failure f = out.error();
      o("range", &f, seconds);
    }
  }
  co_return out;
}

net::awaitable<result<std::uint64_t>> fus_session::plain_size(build_info build) {
  const auto file = build.file();
  if (file.size < crypto::aes_block || file.size % crypto::aes_block != 0)
    co_return make_failure(errc::bad_answer,
                           "encrypted size " + std::to_string(file.size) + " is not whole blocks");
  auto last = co_await fetch_range(file, crypto::last_block_range(file.size));
  if (!last) co_return last.error();
  crypto::block_decryptor decryptor(build.key);
  std::array<std::uint8_t, crypto::aes_block> block{};
  if (auto ec = decryptor.decrypt(*last, block); ec)
    co_return make_failure(errc::bad_answer, "decrypting the last block: " + ec.message());
  auto pad = crypto::pkcs7_pad_length(std::span<const std::uint8_t, crypto::aes_block>(block));
  if (!pad)
    co_return make_failure(
        errc::wrong_key, "the last block of " + build.inform.binary_name + " has no valid padding");
  auto size = crypto::plain_size(file.size, *pad);
  if (!size) co_return make_failure(errc::bad_answer, size.error().message());
  co_return *size;
}

std::uint64_t fus_session::auth_generation() const {
  return channel_->generation();
}

net::awaitable<result<void>> fus_session::reauthorize(download_file file,
                                                      std::uint64_t seen_generation) {
  co_return co_await channel_->reauthorize(file, seen_generation);
}

std::string fus_session::nonce() const {
  return channel_->core().nonce();
}
std::string fus_session::cookies() const {
  return channel_->core().jar().header();
}

}  // namespace fusproxy::upstream
