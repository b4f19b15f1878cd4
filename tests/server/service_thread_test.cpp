// server::service_thread: the service's calls and bodies run on the service's thread, the
// body's writes on the caller's; the calls with a deadline never block the caller and are
// dropped when they time out queued; cancellation crosses the hop.
#include "server/service_thread.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <future>
#include <thread>

namespace net = boost::asio;
using namespace fusproxy::server;

namespace {

// Two threads, as `fusproxy serve` runs them.
struct two_threads {
  net::io_context service, http;
  net::executor_work_guard<net::io_context::executor_type> keep_service =
      net::make_work_guard(service);
  net::executor_work_guard<net::io_context::executor_type> keep_http = net::make_work_guard(http);
  std::thread service_thread{[this] { service.run(); }};
  std::thread http_thread{[this] { http.run(); }};
  ~two_threads() {
    service.stop();
    http.stop();
    service_thread.join();
    http_thread.join();
  }
};

// Runs `a` on the HTTP thread and waits for its value (the test's thread is no I/O thread).
template <class T>
T call(two_threads& t, net::awaitable<T> a) {
  auto f = net::co_spawn(t.http, std::move(a), net::use_future);
  REQUIRE(f.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  return f.get();
}

// Lets both threads run what was queued before (posts may queue more: a few rounds).
void settle(two_threads& t) {
  for (int round = 0; round < 3; ++round)
    for (auto* ioc : {&t.service, &t.http}) {
      std::promise<void> p;
      net::post(*ioc, [&p] { p.set_value(); });
      p.get_future().wait();
    }
}

// Records the thread each part ran on.
struct seen {
  std::thread::id service_call, body, sink_write, sink_file;
};

class recording_sink final : public body_sink {
 public:
  explicit recording_sink(seen& s) : s_(s) {}
  net::awaitable<boost::system::error_code> write(std::span<const std::byte> bytes) override {
    s_.sink_write = std::this_thread::get_id();
    left_ -= bytes.size();
    co_return boost::system::error_code{};
  }
  net::awaitable<boost::system::error_code> write_file(int, std::uint64_t,
                                                       std::uint64_t length) override {
    s_.sink_file = std::this_thread::get_id();
    left_ -= length;
    co_return boost::system::error_code{};
  }
  std::uint64_t remaining() const override { return left_; }

 private:
  seen& s_;
  std::uint64_t left_ = 10;
};

class recording_body final : public body_source {
 public:
  explicit recording_body(seen& s) : s_(s) {}
  net::awaitable<boost::system::error_code> write_range(std::uint64_t, std::uint64_t,
                                                        body_sink& sink) override {
    s_.body = std::this_thread::get_id();
    const std::byte bytes[4]{};
    if (auto ec = co_await sink.write(bytes)) co_return ec;
    if (auto ec = co_await sink.write_file(-1, 0, 6)) co_return ec;
    co_return sink.remaining() == 0 ? boost::system::error_code{}
                                    : make_error_code(boost::system::errc::io_error);
  }

 private:
  seen& s_;
};

class recording_service final : public firmware_service {
 public:
  explicit recording_service(seen& s) : s_(s) {}
  net::awaitable<service_result<version_list>> versions(const std::string& model,
                                                        const std::string&,
                                                        const request_context&) override {
    s_.service_call = std::this_thread::get_id();
    version_list v;
    v.model = model;
    co_return v;
  }
  net::awaitable<service_result<firmware_metadata>> metadata(const std::string&, const std::string&,
                                                             const version_ref&,
                                                             const request_context&) override {
    co_return service_error{firmware_errc::not_found, "none", {}};
  }
  net::awaitable<service_result<std::vector<zip_member>>> files(const std::string&,
                                                                const std::string&,
                                                                const version_ref&,
                                                                const request_context&) override {
    co_return std::vector<zip_member>{};
  }
  net::awaitable<service_result<download_representation>> open_download(
      const download_request&, const request_context&) override {
    download_representation rep;
    rep.size = 10;
    rep.body = std::make_shared<recording_body>(s_);
    co_return rep;
  }
  net::awaitable<readiness> ready() override {
    const bool here = std::this_thread::get_id() == owner;
    co_return readiness{here, std::string("checked on ") + (here ? "its" : "another") + " thread"};
  }
  net::awaitable<void> refresh_metrics() override {
    ++refreshes;
    co_return;
  }
  net::awaitable<service_result<boost::json::value>> manage(management_request rq) override {
    ++managed;
    co_return boost::json::value(rq.op == management_request::add_mirror ? "add" : "list");
  }
  std::atomic<int> refreshes{0}, managed{0};
  std::thread::id owner;

 private:
  seen& s_;
};

}  // namespace

TEST_CASE("service_thread: calls and bodies on the service's thread, writes on the caller's") {
  two_threads t;
  seen s;
  recording_service inner(s);
  inner.owner = t.service_thread.get_id();
  service_thread svc(inner, t.service.get_executor());

  auto done = net::co_spawn(
      t.http,
      [&]() -> net::awaitable<boost::system::error_code> {
        // Named arguments: GCC 12 mishandles temporaries inside co_await expressions.
        const std::string model = "SM-A207F", region = "SER";
        const request_context ctx{"rid", "127.0.0.1"};
        const download_request request;
        auto v = co_await svc.versions(model, region, ctx);
        if (!v || v->model != "SM-A207F") co_return make_error_code(boost::system::errc::io_error);
        auto rep = co_await svc.open_download(request, ctx);
        if (!rep) co_return make_error_code(boost::system::errc::io_error);
        recording_sink sink(s);
        co_return co_await rep->body->write_range(0, 10, sink);
      },
      net::use_future);
  REQUIRE(done.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK_FALSE(done.get());
  CHECK(s.service_call == t.service_thread.get_id());
  CHECK(s.body == t.service_thread.get_id());
  CHECK(s.sink_write == t.http_thread.get_id());
  CHECK(s.sink_file == t.http_thread.get_id());

  const auto r = call(t, svc.ready());
  CHECK(r.ready);
  CHECK(r.why == "checked on its thread");
}

TEST_CASE("service_thread: a call that times out while queued is dropped, never run later") {
  two_threads t;
  seen s;
  recording_service inner(s);
  inner.owner = t.service_thread.get_id();
  service_thread svc(inner, t.service.get_executor(), {}, {std::chrono::milliseconds(50)});
  std::promise<void> release;
  auto stuck = release.get_future().share();
  net::post(t.service, [stuck] { stuck.wait(); });
  const auto r = call(t, svc.ready());  // the HTTP thread waits, it does not block
  CHECK_FALSE(r.ready);
  CHECK(r.why.find("did not answer within 50 ms") != std::string::npos);
  CHECK(call(t, svc.status_json()).empty());
  const auto managed = call(t, svc.manage({management_request::add_mirror, "SM-A207F", "SER", ""}));
  REQUIRE_FALSE(managed.has_value());
  CHECK(managed.error().message.find("the call was not made") != std::string::npos);
  release.set_value();
  settle(t);
  CHECK(inner.managed == 0);          // not run once the thread was free again
  CHECK(call(t, svc.ready()).ready);  // answered again
  CHECK(call(t, svc.manage({})).value() == "list");
  CHECK(inner.managed == 1);
}

TEST_CASE("service_thread: a metrics refresh does not wait for a busy service") {
  two_threads t;
  seen s;
  recording_service inner(s);
  service_thread svc(inner, t.service.get_executor(), {}, {});
  call(t, svc.refresh_metrics());
  CHECK(inner.refreshes == 1);
  std::promise<void> release;
  auto stuck = release.get_future().share();
  net::post(t.service, [stuck] { stuck.wait(); });
  // Both return while the service thread is still stuck (it is released only afterwards).
  call(t, svc.refresh_metrics());
  call(t, svc.refresh_metrics());  // no second refresh queued
  CHECK(inner.refreshes == 1);
  release.set_value();
  settle(t);
  CHECK(inner.refreshes == 2);  // the queued refresh ran once the thread was free
  call(t, svc.refresh_metrics());
  CHECK(inner.refreshes == 3);
}

namespace {
// A body that waits for bytes that never come (a stalled upstream), on the service thread.
class waiting_body final : public body_source {
 public:
  net::awaitable<boost::system::error_code> write_range(std::uint64_t, std::uint64_t,
                                                        body_sink&) override {
    net::steady_timer never(co_await net::this_coro::executor,
                            net::steady_timer::time_point::max());
    auto [ec] = co_await never.async_wait(net::as_tuple(net::use_awaitable));
    thread = std::this_thread::get_id();
    co_return ec;
  }
  std::thread::id thread;
};
}  // namespace

TEST_CASE("service_thread: cancelling the caller ends a body's wait on the service thread") {
  two_threads t;
  seen s;
  recording_sink sink(s);
  auto inner = std::make_shared<waiting_body>();
  // The body as open_download hands it out: wrapped to run on the service's thread.
  class one_body final : public firmware_service {
   public:
    explicit one_body(std::shared_ptr<body_source> b) : b_(std::move(b)) {}
    net::awaitable<service_result<version_list>> versions(const std::string&, const std::string&,
                                                          const request_context&) override {
      co_return version_list{};
    }
    net::awaitable<service_result<firmware_metadata>> metadata(const std::string&,
                                                               const std::string&,
                                                               const version_ref&,
                                                               const request_context&) override {
      co_return firmware_metadata{};
    }
    net::awaitable<service_result<std::vector<zip_member>>> files(const std::string&,
                                                                  const std::string&,
                                                                  const version_ref&,
                                                                  const request_context&) override {
      co_return std::vector<zip_member>{};
    }
    net::awaitable<service_result<download_representation>> open_download(
        const download_request&, const request_context&) override {
      download_representation rep;
      rep.size = 10;
      rep.body = b_;
      co_return rep;
    }

   private:
    std::shared_ptr<body_source> b_;
  } bodies(inner);
  service_thread hop(bodies, t.service.get_executor());
  net::cancellation_signal client_gone;
  auto done = net::co_spawn(
      t.http,
      [&]() -> net::awaitable<boost::system::error_code> {
        const download_request request;
        const request_context ctx{"rid", "127.0.0.1"};
        auto rep = co_await hop.open_download(request, ctx);
        if (!rep) co_return make_error_code(boost::system::errc::io_error);
        co_return co_await rep->body->write_range(0, 10, sink);
      },
      net::bind_cancellation_slot(client_gone.slot(), net::use_future));
  // The body is waiting on the service thread; the client leaves (emitted on the HTTP
  // thread, which owns the awaiting coroutine).
  for (int i = 0; i < 5; ++i) settle(t);
  REQUIRE(done.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);
  net::post(t.http, [&] { client_gone.emit(net::cancellation_type::terminal); });
  REQUIRE(done.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(done.get() == net::error::operation_aborted);
  CHECK(inner->thread == t.service_thread.get_id());
}
