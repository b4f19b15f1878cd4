// server::service_thread: the service's calls and bodies run on the service's thread, the
// body's writes on the caller's; the synchronous calls give up after their timeout.
#include "server/service_thread.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
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
    co_return service_error{api_error::not_found, "none", {}};
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
  bool ready(std::string& why) const override {
    why = "checked on " + std::string(std::this_thread::get_id() == owner ? "its" : "another") +
          " thread";
    return std::this_thread::get_id() == owner;
  }
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

  std::string why;
  CHECK(svc.ready(why));
  CHECK(why == "checked on its thread");
}

TEST_CASE("service_thread: a synchronous call gives up when the service thread is stuck") {
  two_threads t;
  seen s;
  recording_service inner(s);
  inner.owner = t.service_thread.get_id();
  service_thread svc(inner, t.service.get_executor(), std::chrono::milliseconds(50));
  std::promise<void> release;
  auto stuck = release.get_future().share();
  net::post(t.service, [stuck] { stuck.wait(); });
  std::string why;
  CHECK_FALSE(svc.ready(why));
  CHECK(why.find("did not answer within 50 ms") != std::string::npos);
  CHECK(svc.status_json() == "{}");
  release.set_value();
  CHECK(svc.ready(why));  // answered again once the thread is free
}
