#include "server/service_thread.hpp"

#include <spdlog/logger.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <memory>
#include <optional>
#include <utility>

namespace fusproxy::server {

namespace net = boost::asio;

namespace {

// Awaits `work` run on `target` (a coroutine of its own there), with cancellation crossing
// the hop: a cancellation of the awaiting coroutine is posted to `target` and emitted
// there, to a signal that only `target` connects, emits and clears, and only while the
// work runs. Without this the caller's slot would be connected to co_spawn's forwarding
// handler, which dispatches an emission to `target` through a signal living in the
// caller's slot: gone by the time it runs when the work completed meanwhile.
struct hop_state {
  net::cancellation_signal signal;  // touched on `target` only
  bool finished = false;            // on `target`: the work is over, emit nothing
};

template <class T>
net::awaitable<T> run_on_target(std::shared_ptr<hop_state> st, net::awaitable<T> work) {
  struct mark_finished {
    hop_state& s;
    ~mark_finished() { s.finished = true; }
  } finish{*st};
  // No suspension between this coroutine's start and the connection of the signal: an
  // emission posted by the caller runs after it (one thread, FIFO).
  const auto here = co_await net::this_coro::executor;
  co_return co_await net::co_spawn(
      here, std::move(work), net::bind_cancellation_slot(st->signal.slot(), net::use_awaitable));
}

template <class T>
net::awaitable<T> hop(net::any_io_executor target, net::awaitable<T> work) {
  auto st = std::make_shared<hop_state>();
  net::cancellation_state state = co_await net::this_coro::cancellation_state;
  auto slot = state.slot();
  if (slot.is_connected())
    slot.assign([st, target](net::cancellation_type type) {
      net::post(target, [st, type] {
        if (!st->finished) st->signal.emit(type);
      });
    });
  struct release_slot {
    net::cancellation_slot s;
    ~release_slot() {
      if (s.is_connected()) s.clear();
    }
  } release{slot};
  // An unconnected slot for co_spawn itself: the forwarding is ours (above).
  auto there = run_on_target(st, std::move(work));
  co_return co_await net::co_spawn(
      target, std::move(there),
      net::bind_cancellation_slot(net::cancellation_slot(), net::use_awaitable));
}

// The connection's sink, seen from the service thread: each write runs on the connection's
// executor (its socket, its timers), the body waits for it. A write is bounded by the
// connection's write-progress timeout and fails once the socket is closed, so it is not
// cancelled from here.
class connection_sink final : public body_sink {
 public:
  connection_sink(body_sink& inner, net::any_io_executor connection)
      : inner_(inner), connection_(std::move(connection)) {}

  net::awaitable<boost::system::error_code> write(std::span<const std::byte> bytes) override {
    auto call = inner_.write(bytes);
    co_return co_await net::co_spawn(
        connection_, std::move(call),
        net::bind_cancellation_slot(net::cancellation_slot(), net::use_awaitable));
  }
  net::awaitable<boost::system::error_code> write_file(int fd, std::uint64_t offset,
                                                       std::uint64_t length) override {
    auto call = inner_.write_file(fd, offset, length);
    co_return co_await net::co_spawn(
        connection_, std::move(call),
        net::bind_cancellation_slot(net::cancellation_slot(), net::use_awaitable));
  }
  // Only changed by the writes above, which this body awaits: no write runs concurrently.
  std::uint64_t remaining() const override { return inner_.remaining(); }

 private:
  body_sink& inner_;
  net::any_io_executor connection_;
};

// A body of the service, run on the service's executor (its fetch job's state is there),
// writing through the caller's connection. Cancelling the caller's wait (client gone,
// shutdown) ends the body's wait for bytes on the service thread.
class service_body final : public body_source {
 public:
  service_body(std::shared_ptr<body_source> inner, net::any_io_executor service)
      : inner_(std::move(inner)), service_(std::move(service)) {}

  net::awaitable<boost::system::error_code> write_range(std::uint64_t first, std::uint64_t length,
                                                        body_sink& sink) override {
    connection_sink on_connection(sink, co_await net::this_coro::executor);
    auto inner = inner_;  // kept alive by this frame while the service thread uses it
    try {
      auto call = inner->write_range(first, length, on_connection);
      co_return co_await hop(service_, std::move(call));
    } catch (const boost::system::system_error& e) {
      // A cancelled body throws at its next suspension (Asio's throw_if_cancelled).
      co_return e.code();
    }
  }

 private:
  std::shared_ptr<body_source> inner_;
  net::any_io_executor service_;
};

// One call with a deadline (see service_thread::within), shared by the caller and the
// service thread. The lock is only taken in these plain functions, never across (or in
// the same scope as) a co_await or co_return: GCC 12 has kept such a guard alive past a
// co_return, which deadlocked the next call.
template <class T>
struct deadline_call {
  enum class phase { queued, running, done, dropped };
  enum class next { wait_more, answer, give_up };
  explicit deadline_call(net::any_io_executor caller)
      : wake(std::move(caller), net::steady_timer::time_point::max()) {}

  // Service thread: false when the caller already gave up (the call must not run).
  bool start() {
    std::lock_guard lock(mutex);
    if (at == phase::dropped) return false;
    at = phase::running;
    return true;
  }
  // Service thread: the answer; then the caller is woken.
  void finish(std::optional<T> v, std::exception_ptr e) {
    std::lock_guard lock(mutex);
    value = std::move(v);
    error = e;
    at = phase::done;
  }
  // Caller: what to do after a wake-up (deadline, completion or cancellation).
  next decide(bool caller_cancelled, bool expired, bool keep_running_late) {
    std::lock_guard lock(mutex);
    if (at == phase::done) return next::answer;
    if (!caller_cancelled && !expired) return next::wait_more;
    if (keep_running_late) return next::give_up;  // it still runs, for later callers
    if (at == phase::queued) {
      at = phase::dropped;
      return next::give_up;
    }
    if (caller_cancelled) return next::give_up;
    wake.expires_at(net::steady_timer::time_point::max());  // started: await its end
    return next::wait_more;
  }

  std::mutex mutex;  // guards the three below
  phase at = phase::queued;
  std::optional<T> value;    // read by the caller once done
  std::exception_ptr error;  // read by the caller once done
  net::steady_timer wake;    // the caller's executor only: cancelled when the call is done
};

}  // namespace

service_thread::service_thread(firmware_service& inner, net::any_io_executor executor,
                               std::shared_ptr<spdlog::logger> log,
                               service_thread_timeouts timeouts)
    : inner_(inner),
      executor_(executor),
      log_(log),
      timeouts_(timeouts),
      tasks_(executor, std::move(log), "service thread") {}

service_thread::~service_thread() = default;

void service_thread::stop() {
  tasks_.cancel_all();
}

// Runs work() on the service's thread as a task of this object and waits for its value at
// most `timeout`. nullopt when it did not answer in time or failed. A call still queued
// when the time is up (or when the caller is cancelled) is dropped: it never runs later;
// one that already started is awaited to its end. With `keep_running_late` the caller
// leaves at the deadline and the call still runs (it refreshes the metrics snapshot).
template <class T>
net::awaitable<std::optional<T>> service_thread::within(std::chrono::milliseconds timeout,
                                                        bool keep_running_late,
                                                        std::function<net::awaitable<T>()> work) {
  using call_type = deadline_call<T>;
  auto call = std::make_shared<call_type>(co_await net::this_coro::executor);
  net::post(executor_, [this, call, work = std::move(work)]() mutable {
    auto task = [](std::shared_ptr<call_type> c,
                   std::function<net::awaitable<T>()> w) -> net::awaitable<void> {
      if (!c->start()) co_return;  // the caller gave up while it was queued
      std::optional<T> v;
      std::exception_ptr e;
      try {
        v = co_await w();
      } catch (...) {
        e = std::current_exception();
      }
      c->finish(std::move(v), e);
      net::post(c->wake.get_executor(), [c] { c->wake.cancel(); });
    };
    tasks_.spawn(task(call, std::move(work)), "a call from the HTTP thread");
  });

  call->wake.expires_after(timeout);
  for (;;) {
    auto [ec] = co_await call->wake.async_wait(net::as_tuple(net::use_awaitable));
    net::cancellation_state state = co_await net::this_coro::cancellation_state;
    const bool caller_cancelled = state.cancelled() != net::cancellation_type::none;
    const auto next = call->decide(caller_cancelled, !ec, keep_running_late);
    if (next == call_type::next::give_up) co_return std::nullopt;
    if (next == call_type::next::answer) break;
  }
  // Done: the service thread no longer touches the call.
  if (call->error) {
    try {
      std::rethrow_exception(call->error);
    } catch (const std::exception& x) {
      if (log_) log_->error("service call failed: {}", x.what());
    } catch (...) {
    }
    co_return std::nullopt;
  }
  co_return std::move(call->value);
}

// The arguments are copied into this frame first: the service thread reads them while the
// caller waits, and the copies outlive the call whatever the caller passed.
net::awaitable<service_result<version_list>> service_thread::versions(const std::string& model,
                                                                      const std::string& region,
                                                                      const request_context& ctx) {
  const std::string m = model, r = region;
  const request_context c = ctx;
  auto call = inner_.versions(m, r, c);
  co_return co_await hop(executor_, std::move(call));
}

net::awaitable<service_result<firmware_metadata>> service_thread::metadata(
    const std::string& model, const std::string& region, const version_ref& version,
    const request_context& ctx) {
  const std::string m = model, r = region;
  const version_ref v = version;
  const request_context c = ctx;
  auto call = inner_.metadata(m, r, v, c);
  co_return co_await hop(executor_, std::move(call));
}

net::awaitable<service_result<std::vector<zip_member>>> service_thread::files(
    const std::string& model, const std::string& region, const version_ref& version,
    const request_context& ctx) {
  const std::string m = model, r = region;
  const version_ref v = version;
  const request_context c = ctx;
  auto call = inner_.files(m, r, v, c);
  co_return co_await hop(executor_, std::move(call));
}

net::awaitable<service_result<std::vector<tar_entry_info>>> service_thread::entries(
    const std::string& model, const std::string& region, const version_ref& version,
    const std::string& member, const request_context& ctx) {
  const std::string m = model, r = region, n = member;
  const version_ref v = version;
  const request_context c = ctx;
  auto call = inner_.entries(m, r, v, n, c);
  co_return co_await hop(executor_, std::move(call));
}

net::awaitable<service_result<download_representation>> service_thread::open_download(
    const download_request& request, const request_context& ctx) {
  const download_request q = request;
  const request_context c = ctx;
  auto call = inner_.open_download(q, c);
  auto rep = co_await hop(executor_, std::move(call));
  if (rep && rep->body) rep->body = std::make_shared<service_body>(rep->body, executor_);
  co_return rep;
}

net::awaitable<readiness> service_thread::ready() {
  // Named first: GCC 12 mishandles temporaries inside co_await expressions.
  std::function<net::awaitable<readiness>()> work = [&inner = inner_] { return inner.ready(); };
  auto r = co_await within<readiness>(timeouts_.sync, false, std::move(work));
  if (r) co_return *r;
  co_return readiness{false, "the firmware service did not answer within " +
                                 std::to_string(timeouts_.sync.count()) + " ms"};
}

net::awaitable<void> service_thread::refresh_metrics() {
  auto refresh = refresh_;
  if (!refresh->begin()) co_return;  // one still queued: the thread is busy
  std::function<net::awaitable<bool>()> work = [&inner = inner_,
                                                refresh]() -> net::awaitable<bool> {
    struct done {
      refresh_state& r;
      ~done() { r.end(); }
    } ender{*refresh};
    co_await inner.refresh_metrics();
    co_return true;
  };
  // Past the wait the refresh goes on; this scrape renders the gauges as last set.
  (void)co_await within<bool>(timeouts_.metrics, true, std::move(work));
}

net::awaitable<boost::json::object> service_thread::status_json() {
  std::function<net::awaitable<boost::json::object>()> work = [&inner = inner_] {
    return inner.status_json();
  };
  auto r = co_await within<boost::json::object>(timeouts_.sync, false, std::move(work));
  co_return r ? std::move(*r) : boost::json::object();
}

net::awaitable<service_result<boost::json::value>> service_thread::manage(
    management_request request) {
  std::function<net::awaitable<service_result<boost::json::value>>()> work =
      [&inner = inner_, rq = std::move(request)] { return inner.manage(rq); };
  auto r =
      co_await within<service_result<boost::json::value>>(timeouts_.sync, false, std::move(work));
  if (r) co_return std::move(*r);
  co_return service_error{firmware_errc::internal_error,
                          "the firmware service did not answer within " +
                              std::to_string(timeouts_.sync.count()) + " ms; the call was not made",
                          {}};
}

}  // namespace fusproxy::server
