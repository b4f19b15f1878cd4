#include "upstream/fus_channel.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "protocol/ascii.hpp"
#include "upstream/fus_client.hpp"

namespace fusproxy::upstream {

namespace net = boost::asio;

namespace {

http_request to_http(const base_url& base, fus_request&& r) {
  http_request req;
  req.method = r.method;
  req.target = base.path + r.target;
  req.headers = std::move(r.headers);
  req.body = std::move(r.body);
  return req;
}

}  // namespace

fus_channel::fus_channel(fus_client& client, std::string request_id)
    : client_(&client),
      core_(client.config().dialect, client.config().legacy_keys, std::move(request_id)),
      refreshed_(client.http().get_executor()) {}

const base_url& fus_channel::base_of(upstream_host host) const {
  switch (host) {
    case upstream_host::cloud:
      return client_->cloud_base();
    case upstream_host::fota:
      return client_->fota_base();
    case upstream_host::fus:
      break;
  }
  return client_->fus_base();
}

net::awaitable<result<http_response>> fus_channel::send(fus_request r) {
  const auto& base = base_of(r.host);
  const auto kind = r.kind;
  const auto svc = r.host == upstream_host::fota ? service::fota : service::fus;
  const auto started = std::chrono::steady_clock::now();
  auto resp = co_await client_->http().request(base, to_http(base, std::move(r)),
                                               protocol::max_answer_size);
  if (resp && svc == service::fus) core_.absorb(resp->headers);
  observe(kind, svc, started, resp);
  co_return resp;
}

net::awaitable<result<http_body_stream>> fus_channel::open(fus_request r) {
  const auto& base = base_of(r.host);
  auto body = co_await client_->http().open(base, to_http(base, std::move(r)));
  if (body) core_.absorb(body->headers());
  co_return body;
}

// Tells the client's observer (metrics) how an exchange went.
void fus_channel::observe(std::string_view kind, service svc,
                          std::chrono::steady_clock::time_point started,
                          const result<http_response>& r) const {
  const auto& o = client_->observer();
  if (!o) return;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!r) {
    const failure f = r.error();
    o(kind, &f, seconds);
  } else if (!is_success(r->status)) {
    const auto f = status_failure(svc, r->status, r->header("Retry-After"), r->body);
    o(kind, &f, seconds);
  } else {
    o(kind, nullptr, seconds);
  }
}

net::awaitable<result<void>> fus_channel::generate_nonce() {
  auto r = co_await send(core_.generate_nonce());
  if (!r) co_return r.error();
  co_return core_.on_nonce_answer(r->status, r->headers, r->body);
}

net::awaitable<result<void>> fus_channel::ensure_nonce() {
  if (core_.has_nonce()) co_return result<void>{};
  co_return co_await generate_nonce();
}

net::awaitable<result<protocol::inform_answer>> fus_channel::binary_inform(
    const protocol::inform_request& in) {
  protocol::inform_request req = in;
  req.model = protocol::ascii::to_upper(req.model);
  req.region = protocol::ascii::to_upper(req.region);
  if (core_.dialect() == protocol::dialect::legacy)
    req.imei = std::string(client_->imei_for(req.model));
  protocol::inform_answer answer;
  signed_step step{[&] { return core_.binary_inform(req); },
                   [&](const http_response& r, bool may_renew) {
                     answer = {};
                     return core_.on_inform_answer(r.status, r.body, may_renew, answer);
                   }};
  if (auto done = co_await renewable(std::move(step)); !done) co_return done.error();
  co_return answer;
}

net::awaitable<result<void>> fus_channel::init_for_mass(const protocol::init_request& init) {
  signed_step step{[&] { return core_.init_for_mass(init); },
                   [&](const http_response& r, bool may_renew) {
                     return core_.on_init_answer(r.status, r.body, may_renew, init);
                   }};
  co_return co_await renewable(std::move(step));
}

// The core allows one renewal per step (the second 401 is its failure: may_renew false).
net::awaitable<result<void>> fus_channel::renewable(signed_step step) {
  for (int attempt = 0;; ++attempt) {
    if (auto n = co_await ensure_nonce(); !n) co_return n.error();
    auto request = step.make();
    if (!request) co_return request.error();
    auto r = co_await send(std::move(*request));
    if (!r) co_return r.error();
    auto verdict = step.judge(*r, attempt == 0);
    if (!verdict) co_return verdict.error();
    if (*verdict == answer_verdict::done) co_return result<void>{};
    if (auto n = co_await generate_nonce(); !n) co_return n.error();
  }
}

net::awaitable<void> fus_channel::wait_for_refresh() {
  while (refreshing_) co_await refreshed_.async_wait(net::as_tuple(net::use_awaitable));
}

// One step at a time as the core asks: GenerateNonce, BinaryInform for the file (unless
// this session's answered it), InitForMass. One coroutine at a time; the others wait for
// its outcome.
net::awaitable<result<void>> fus_channel::refresh(const download_file& file) {
  refreshing_ = true;
  refresh_failure_.reset();
  refreshed_.expires_at(net::steady_timer::time_point::max());
  result<void> r;
  // At most one of each step, plus one renewal of the nonce.
  for (int steps = 0; r && steps < 6; ++steps) {
    const auto step = core_.next_auth_step(file);
    if (step == fus_session_core::auth_step::ready) break;
    if (step == fus_session_core::auth_step::generate_nonce) {
      r = co_await generate_nonce();
    } else if (step == fus_session_core::auth_step::binary_inform) {
      auto answer = co_await binary_inform(file.inform);
      if (!answer)
        r = answer.error();
      else if (answer->binary_name != file.init.binary_name)
        r = make_failure(errc::not_hosted, "BinaryInform for " + file.inform.version +
                                               " now names " + answer->binary_name + ", not " +
                                               file.init.binary_name);
    } else {
      r = co_await init_for_mass(file.init);
    }
  }
  if (r && core_.next_auth_step(file) != fus_session_core::auth_step::ready)
    r = make_failure(errc::auth, "could not authorise " + file.init.binary_name);
  if (!r) refresh_failure_ = r.error();
  ++generation_;
  refreshing_ = false;
  refreshed_.cancel();
  co_return r;
}

net::awaitable<result<void>> fus_channel::ensure_authorised(const download_file& file) {
  co_await wait_for_refresh();
  if (core_.next_auth_step(file) == fus_session_core::auth_step::ready) co_return result<void>{};
  co_return co_await refresh(file);
}

net::awaitable<result<void>> fus_channel::reauthorize(const download_file& file,
                                                      std::uint64_t seen) {
  if (generation_ == seen && !refreshing_) {
    core_.on_download_unauthorised();
    co_return co_await refresh(file);
  }
  co_await wait_for_refresh();
  if (refresh_failure_) co_return *refresh_failure_;
  co_return result<void>{};
}

}  // namespace fusproxy::upstream
