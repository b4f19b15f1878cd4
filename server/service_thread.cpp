#include "server/service_thread.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <utility>

namespace fusproxy::server {

namespace net = boost::asio;

namespace {

// Runs f() on `ex` and waits for its value, at most `timeout`; nullopt when it did not
// finish in time. f owns what it uses (it may still run after a timeout); the service it
// reaches through outlives the server.
template <typename F>
auto run_and_wait(const net::any_io_executor& ex, std::chrono::milliseconds timeout, F f)
    -> std::optional<decltype(f())> {
  using value = decltype(f());
  auto promise = std::make_shared<std::promise<value>>();
  auto future = promise->get_future();
  net::post(ex, [promise, f = std::move(f)]() mutable {
    try {
      promise->set_value(f());
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  return future.get();
}

// The connection's sink, seen from the service thread: each write runs on the connection's
// executor (its socket, its timers), the body waits for it.
class connection_sink final : public body_sink {
 public:
  connection_sink(body_sink& inner, net::any_io_executor connection)
      : inner_(inner), connection_(std::move(connection)) {}

  net::awaitable<boost::system::error_code> write(std::span<const std::byte> bytes) override {
    co_return co_await net::co_spawn(connection_, inner_.write(bytes), net::use_awaitable);
  }
  net::awaitable<boost::system::error_code> write_file(int fd, std::uint64_t offset,
                                                       std::uint64_t length) override {
    co_return co_await net::co_spawn(connection_, inner_.write_file(fd, offset, length),
                                     net::use_awaitable);
  }
  // Only changed by the writes above, which this body awaits: no write runs concurrently.
  std::uint64_t remaining() const override { return inner_.remaining(); }

 private:
  body_sink& inner_;
  net::any_io_executor connection_;
};

// A body of the service, run on the service's executor (its fetch job's state is there),
// writing through the caller's connection.
class service_body final : public body_source {
 public:
  service_body(std::shared_ptr<body_source> inner, net::any_io_executor service)
      : inner_(std::move(inner)), service_(std::move(service)) {}

  net::awaitable<boost::system::error_code> write_range(std::uint64_t first, std::uint64_t length,
                                                        body_sink& sink) override {
    connection_sink on_connection(sink, co_await net::this_coro::executor);
    auto inner = inner_;  // kept alive by this frame while the service thread uses it
    co_return co_await net::co_spawn(service_, inner->write_range(first, length, on_connection),
                                     net::use_awaitable);
  }

 private:
  std::shared_ptr<body_source> inner_;
  net::any_io_executor service_;
};

}  // namespace

service_thread::service_thread(firmware_service& inner, net::any_io_executor executor,
                               std::chrono::milliseconds sync_timeout)
    : inner_(inner), executor_(std::move(executor)), sync_timeout_(sync_timeout) {}

// The arguments are copied into this frame first: the service thread reads them while the
// caller waits, and the copies outlive the call whatever the caller passed.
net::awaitable<service_result<version_list>> service_thread::versions(const std::string& model,
                                                                      const std::string& region,
                                                                      const request_context& ctx) {
  const std::string m = model, r = region;
  const request_context c = ctx;
  co_return co_await net::co_spawn(executor_, inner_.versions(m, r, c), net::use_awaitable);
}

net::awaitable<service_result<firmware_metadata>> service_thread::metadata(
    const std::string& model, const std::string& region, const version_ref& version,
    const request_context& ctx) {
  const std::string m = model, r = region;
  const version_ref v = version;
  const request_context c = ctx;
  co_return co_await net::co_spawn(executor_, inner_.metadata(m, r, v, c), net::use_awaitable);
}

net::awaitable<service_result<std::vector<zip_member>>> service_thread::files(
    const std::string& model, const std::string& region, const version_ref& version,
    const request_context& ctx) {
  const std::string m = model, r = region;
  const version_ref v = version;
  const request_context c = ctx;
  co_return co_await net::co_spawn(executor_, inner_.files(m, r, v, c), net::use_awaitable);
}

net::awaitable<service_result<download_representation>> service_thread::open_download(
    const download_request& request, const request_context& ctx) {
  const download_request q = request;
  const request_context c = ctx;
  auto rep = co_await net::co_spawn(executor_, inner_.open_download(q, c), net::use_awaitable);
  if (rep && rep->body) rep->body = std::make_shared<service_body>(rep->body, executor_);
  co_return rep;
}

bool service_thread::ready(std::string& why) const {
  auto r = run_and_wait(executor_, sync_timeout_, [&inner = inner_] {
    std::string w;
    const bool ok = inner.ready(w);
    return std::pair{ok, w};
  });
  if (!r) {
    why = "the firmware service did not answer within " + std::to_string(sync_timeout_.count()) +
          " ms";
    return false;
  }
  why = r->second;
  return r->first;
}

void service_thread::append_metrics(std::string& out) const {
  auto r = run_and_wait(executor_, sync_timeout_, [&inner = inner_] {
    std::string more;
    inner.append_metrics(more);
    return more;
  });
  if (r) out += *r;
}

std::string service_thread::status_json() const {
  auto r =
      run_and_wait(executor_, sync_timeout_, [&inner = inner_] { return inner.status_json(); });
  return r ? *r : std::string("{}");
}

service_result<std::string> service_thread::manage(const route& rt, std::string_view method,
                                                   std::string_view body) {
  auto r = run_and_wait(executor_, sync_timeout_,
                        [&inner = inner_, rt, m = std::string(method), b = std::string(body)] {
                          return inner.manage(rt, m, b);
                        });
  if (!r)
    return service_error{api_error::internal_error,
                         "the firmware service did not answer within " +
                             std::to_string(sync_timeout_.count()) + " ms",
                         {}};
  return *r;
}

}  // namespace fusproxy::server
