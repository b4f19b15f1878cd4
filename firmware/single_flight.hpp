#pragma once
// single_flight<Key, T>: identical concurrent lookups share one run of the work (as Go's
// singleflight, on one thread). The first caller for a key starts the work as a task of
// the owner's task_group; callers that come while it runs join it; all of them await the
// same service_result<T>.
//
// Why the work is a task of its own rather than the first caller's coroutine: a caller
// that goes away (its client closed) cancels only its own wait, never what others wait
// for; the owner's task_group::cancel_all() (stop) does cancel it. The group joins it, and
// an exception escaping the work is logged and becomes an internal_error for every waiter:
// it never vanishes, and never leaves a key joined by nobody's work.
//
// The key is free again as soon as the result is in: the caller's cache, not this table,
// keeps answers (work that fills a cache fills it before it returns, so a caller that
// comes after the flight finds the answer there).
//
// Threading: one thread, the executor's (the resolver is single-threaded): no locks.
#include <spdlog/logger.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "firmware/model/firmware_types.hpp"
#include "net/task_group.hpp"

namespace fusproxy::server {

template <class Key, class T, class Hash = std::hash<Key>>
class single_flight {
 public:
  using result_type = service_result<T>;

  // `tasks` runs (and joins) the work; `what` names it in log lines ("resolver: lookup").
  single_flight(boost::asio::any_io_executor executor, task_group& tasks,
                std::shared_ptr<spdlog::logger> log, std::string what)
      : executor_(std::move(executor)),
        tasks_(tasks),
        log_(std::move(log)),
        what_(std::move(what)),
        flights_(std::make_shared<table>()) {}
  single_flight(const single_flight&) = delete;
  single_flight& operator=(const single_flight&) = delete;

  // Whether a flight for `key` runs now: run() would join it.
  bool running(const Key& key) const { return flights_->count(key) != 0; }
  // Flights running now.
  std::size_t size() const { return flights_->size(); }

  // The result of the flight for `key`. A running flight is joined; otherwise `start()`
  // (called only then) gives the awaitable<result_type> that becomes the new flight.
  // Cancelling the caller (terminal or partial cancellation of its coroutine) ends only its
  // wait, with an internal_error "request cancelled"; the flight goes on for the others.
  // (Both by value: they live in the coroutine's frame, whatever the caller passed.)
  template <class Start>
  boost::asio::awaitable<result_type> run(Key key, Start start) {
    std::shared_ptr<flight> f;
    if (auto it = flights_->find(key); it != flights_->end()) {
      f = it->second;
    } else {
      f = std::make_shared<flight>(executor_);
      flights_->emplace(key, f);
      launch(key, f, start());
    }
    co_return co_await wait_for(f);
  }

 private:
  using clock = std::chrono::steady_clock;

  // One run in progress. Its waiters await `done`, a timer that never expires and is
  // cancelled when the result is in: one thread, so no lock and no condition variable.
  struct flight {
    explicit flight(const boost::asio::any_io_executor& ex) : done(ex, clock::time_point::max()) {}
    boost::asio::steady_timer done;
    std::optional<result_type> result;
  };
  // Shared with the running tasks, so that a flight that ends after its owner (a lifetime
  // bug the task_group logs) still touches only live memory.
  using table = std::unordered_map<Key, std::shared_ptr<flight>, Hash>;

  // Frees the key (first: whoever asks next starts a new flight or finds the caller's
  // cache filled), then wakes the waiters.
  static void land(table& flights, const Key& key, const std::shared_ptr<flight>& f,
                   result_type r) {
    if (auto it = flights.find(key); it != flights.end() && it->second == f) flights.erase(it);
    f->result = std::move(r);
    f->done.cancel();
  }

  static boost::asio::awaitable<void> fly(std::shared_ptr<table> flights, Key key,
                                          std::shared_ptr<flight> f,
                                          boost::asio::awaitable<result_type> work) {
    auto r = co_await std::move(work);
    land(*flights, key, f, std::move(r));
  }

  void launch(const Key& key, const std::shared_ptr<flight>& f,
              boost::asio::awaitable<result_type> work) {
    tasks_.spawn(fly(flights_, key, f, std::move(work)), "lookup",
                 [flights = flights_, key, f, log = log_, what = what_](std::exception_ptr e) {
                   if (f->result) return;
                   if (log) log->error("{} failed with an exception: {}", what, exception_text(e));
                   land(*flights, key, f,
                        service_error{firmware_errc::internal_error, "internal error", {}});
                 });
  }

  static boost::asio::awaitable<result_type> wait_for(std::shared_ptr<flight> f) {
    namespace net = boost::asio;
    while (!f->result) {
      auto [ec] = co_await f->done.async_wait(net::as_tuple(net::use_awaitable));
      if (f->result) break;
      // Only a cancellation of this waiter (not the flight's end) gets here.
      auto cs = co_await net::this_coro::cancellation_state;
      if (ec && cs.cancelled() != net::cancellation_type::none)
        co_return service_error{firmware_errc::internal_error, "request cancelled", {}};
    }
    co_return *f->result;
  }

  boost::asio::any_io_executor executor_;
  task_group& tasks_;
  std::shared_ptr<spdlog::logger> log_;
  std::string what_;
  std::shared_ptr<table> flights_;
};

}  // namespace fusproxy::server
