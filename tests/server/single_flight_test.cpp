// single_flight<Key, T> (firmware/single_flight.hpp) on a real io_context: joiners share
// one run of the work and its result; an exception in the work is an error for every
// waiter and frees the key; a joiner that is cancelled leaves the flight running for the
// others; the owner's task_group joins and stops the work.
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "firmware/single_flight.hpp"
#include "net/task_group.hpp"

namespace net = boost::asio;
using namespace fusproxy::server;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<spdlog::logger> quiet_log() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

// What the work waits for before it answers: the test opens it when it has looked at the
// flight in progress.
struct gate {
  bool open = false;
};

// The work of one flight: counts its runs, waits for the gate (polling a short timer, so
// that a cancellation of the flight ends it at once), then answers `value` or throws.
net::awaitable<service_result<int>> work(gate& g, int& runs, int value, bool fail = false) {
  ++runs;
  net::steady_timer t(co_await net::this_coro::executor);
  while (!g.open) {
    t.expires_after(1ms);
    co_await t.async_wait(net::use_awaitable);
  }
  if (fail) throw std::runtime_error("the work broke");
  co_return value;
}

// A waiter's answer that must be a value; the value.
int value_of(const std::optional<service_result<int>>& r) {
  REQUIRE(r);
  REQUIRE(r->has_value());
  return **r;
}

// A waiter's answer that must be an internal_error; its message.
std::string internal_error_of(const std::optional<service_result<int>>& r) {
  REQUIRE(r);
  REQUIRE(r->has_error());
  CHECK(r->error().kind == firmware_errc::internal_error);
  return r->error().message;
}

struct fixture {
  net::io_context io;
  std::shared_ptr<spdlog::logger> log = quiet_log();
  task_group tasks{io.get_executor(), log, "test"};
  single_flight<std::string, int> flights{io.get_executor(), tasks, log, "test: lookup"};
  gate g;
  int runs = 0;

  // A caller of run(key) whose answer lands in `out`; an exception escaping it fails the
  // test (rethrown from io.run()).
  void ask(const std::string& key, std::optional<service_result<int>>& out, int value,
           bool fail = false, net::cancellation_slot slot = {}) {
    net::co_spawn(
        io,
        [this, key, &out, value, fail]() -> net::awaitable<void> {
          auto start = [&] { return work(g, runs, value, fail); };
          auto flight = flights.run(key, std::move(start));
          out = co_await std::move(flight);
        },
        net::bind_cancellation_slot(slot, [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        }));
  }
};

}  // namespace

TEST_CASE("joiners of one key share one run and its result") {
  fixture f;
  std::optional<service_result<int>> a, b, c, other;
  f.ask("k", a, 42);
  f.ask("k", b, 1);  // joins: its work is never started
  f.ask("k", c, 2);
  f.ask("other", other, 7);
  f.io.poll();
  CHECK(f.runs == 2);  // one per key
  CHECK(f.flights.running("k"));
  CHECK(f.flights.running("other"));
  CHECK(f.flights.size() == 2);
  CHECK(f.tasks.size() == 2);  // the work runs in the owner's group
  CHECK_FALSE(a);

  f.g.open = true;
  f.io.run();
  CHECK(value_of(a) == 42);
  CHECK(value_of(b) == 42);
  CHECK(value_of(c) == 42);
  CHECK(value_of(other) == 7);
  CHECK(f.runs == 2);
  CHECK_FALSE(f.flights.running("k"));  // the key is free once the result is in
  CHECK(f.flights.size() == 0);
  CHECK(f.tasks.size() == 0);  // joined

  // A later caller starts a new flight.
  std::optional<service_result<int>> later;
  f.io.restart();
  f.ask("k", later, 43);
  f.io.run();
  CHECK(value_of(later) == 43);
  CHECK(f.runs == 3);
}

TEST_CASE("an exception in the work is an internal error for every waiter, and frees the key") {
  fixture f;
  std::optional<service_result<int>> a, b;
  f.ask("k", a, 42, true);
  f.ask("k", b, 42, true);
  f.io.poll();
  f.g.open = true;
  f.io.run();  // the exception does not escape: it is the flight's result
  CHECK(internal_error_of(a) == "internal error");
  CHECK(internal_error_of(b) == "internal error");
  CHECK(f.runs == 1);
  CHECK(f.flights.size() == 0);
  CHECK(f.tasks.size() == 0);

  std::optional<service_result<int>> again;
  f.io.restart();
  f.ask("k", again, 5);
  f.io.run();
  CHECK(value_of(again) == 5);
  CHECK(f.runs == 2);
}

TEST_CASE("a cancelled joiner ends its own wait; the flight goes on for the others") {
  fixture f;
  net::cancellation_signal leave_first, leave_second;
  std::optional<service_result<int>> first, second, stays;
  f.ask("k", first, 42, false, leave_first.slot());  // the launcher itself
  f.ask("k", second, 42, false, leave_second.slot());
  f.ask("k", stays, 42);
  f.io.poll();
  REQUIRE(f.flights.running("k"));

  leave_first.emit(net::cancellation_type::terminal);
  leave_second.emit(net::cancellation_type::terminal);
  f.io.poll();
  CHECK(internal_error_of(first) == "request cancelled");
  CHECK(internal_error_of(second) == "request cancelled");
  CHECK_FALSE(stays);
  CHECK(f.flights.running("k"));  // not cancelled with its launcher
  CHECK(f.tasks.size() == 1);

  f.g.open = true;
  f.io.run();
  CHECK(value_of(stays) == 42);
  CHECK(f.runs == 1);
}

TEST_CASE("the owner's cancel_all stops the flight: waiters get an error at once") {
  fixture f;
  std::optional<service_result<int>> a, b;
  f.ask("k", a, 42);
  f.ask("k", b, 42);
  f.io.poll();
  REQUIRE(f.tasks.size() == 1);
  f.tasks.cancel_all();  // the gate stays shut: only the cancellation ends the work
  f.io.run();
  internal_error_of(a);
  internal_error_of(b);
  CHECK(f.flights.size() == 0);
  CHECK(f.tasks.size() == 0);
}
