#include "server/download_queue.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <catch2/catch.hpp>
#include <optional>
#include <thread>

using namespace fusproxy::server;
using namespace std::chrono_literals;
namespace net = boost::asio;

TEST_CASE("fair_slots: caps per client and in total") {
  fair_slots s(2, 3);
  CHECK(s.try_acquire("a"));
  CHECK(s.try_acquire("a"));
  CHECK_FALSE(s.try_acquire("a"));
  CHECK(s.try_acquire("b"));
  CHECK_FALSE(s.try_acquire("c"));  // total reached
  CHECK(s.release("a").empty());
  CHECK(s.try_acquire("c"));
  CHECK(s.active() == 3);
  CHECK(s.release("zzz").empty());  // unknown: no effect
  CHECK(s.active() == 3);
}

TEST_CASE("fair_slots: no cap at all") {
  fair_slots s(0, 0);
  for (int i = 0; i < 1000; ++i) CHECK(s.try_acquire("a"));
  CHECK(s.active() == 1000);
}

TEST_CASE("fair_slots: round robin between clients, FIFO within one") {
  fair_slots s(0, 1);
  REQUIRE(s.try_acquire("x"));
  const auto a1 = s.enqueue("a");
  const auto a2 = s.enqueue("a");
  const auto a3 = s.enqueue("a");
  const auto b1 = s.enqueue("b");
  const auto c1 = s.enqueue("c");
  const auto b2 = s.enqueue("b");
  CHECK(s.queued() == 6);
  // a newcomer waits behind the queue
  CHECK_FALSE(s.try_acquire("d"));
  std::vector<fair_slots::ticket> order;
  std::vector<std::string> owners = {"x", "a", "b", "c", "a", "b", "a"};
  for (std::size_t i = 0; i + 1 < owners.size(); ++i) {
    const auto g = s.release(owners[i]);
    REQUIRE(g.size() == 1);
    order.push_back(g[0]);
  }
  CHECK(order == std::vector<fair_slots::ticket>{a1, b1, c1, a2, b2, a3});
  CHECK(s.queued() == 0);
  CHECK(s.active() == 1);
}

TEST_CASE("fair_slots: a client at its own cap lets the next client go") {
  fair_slots s(1, 0);
  REQUIRE(s.try_acquire("a"));
  const auto a2 = s.enqueue("a");
  CHECK(s.try_acquire("b"));  // b has nothing queued and is under its cap
  CHECK_FALSE(s.try_acquire("a"));
  CHECK(s.release("b").empty());  // a is still at its cap
  const auto g = s.release("a");
  CHECK(g == std::vector<fair_slots::ticket>{a2});
  CHECK(s.active_of("a") == 1);
}

TEST_CASE("fair_slots: cancel removes a queued ticket only") {
  fair_slots s(0, 1);
  REQUIRE(s.try_acquire("x"));
  const auto a = s.enqueue("a");
  const auto b = s.enqueue("b");
  CHECK(s.cancel(a));
  CHECK_FALSE(s.cancel(a));
  CHECK(s.queued() == 1);
  CHECK(s.release("x") == std::vector<fair_slots::ticket>{b});
  CHECK_FALSE(s.cancel(b));  // granted: the holder releases
  CHECK(s.cancel_all().empty());
}

namespace {
struct result_box {
  std::optional<download_queue::outcome> value;
};
void spawn_wait(net::io_context& ioc, download_queue& q, std::shared_ptr<download_queue::waiter> w,
                std::chrono::milliseconds timeout, result_box& out) {
  net::co_spawn(
      ioc,
      [&q, w, timeout, &out]() -> net::awaitable<void> { out.value = co_await q.wait(w, timeout); },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
}
}  // namespace

TEST_CASE("download_queue: a release wakes the next waiter, the rest time out") {
  net::io_context ioc;
  download_queue q(0, 1);
  REQUIRE(q.try_acquire("a"));
  auto w1 = q.enqueue("b", ioc.get_executor());
  auto w2 = q.enqueue("c", ioc.get_executor());
  result_box r1, r2;
  spawn_wait(ioc, q, w1, 10s, r1);
  spawn_wait(ioc, q, w2, 200ms, r2);
  net::steady_timer t(ioc, 50ms);
  t.async_wait([&](auto) { q.release("a"); });
  const auto begun = std::chrono::steady_clock::now();
  ioc.run();
  CHECK(r1.value == download_queue::outcome::granted);
  CHECK(r2.value == download_queue::outcome::timed_out);
  CHECK(std::chrono::steady_clock::now() - begun < 5s);  // w1 did not sit out its 10 s
  CHECK(q.queued() == 0);
  CHECK(q.active() == 1);  // w1 holds the slot
}

TEST_CASE("download_queue: cancel from another thread wakes the waiter without a slot") {
  net::io_context ioc;
  download_queue q(1, 0);
  REQUIRE(q.try_acquire("a"));
  auto w = q.enqueue("a", ioc.get_executor());
  result_box r;
  spawn_wait(ioc, q, w, 30s, r);
  std::thread other([&] {
    std::this_thread::sleep_for(20ms);
    q.cancel(w);
  });
  ioc.run();
  other.join();
  CHECK(r.value == download_queue::outcome::cancelled);
  CHECK(q.queued() == 0);
  CHECK(q.active() == 1);
  q.cancel(w);  // again: no effect
  q.release("a");
  CHECK(q.active() == 0);
}

TEST_CASE("download_queue: cancel_all (shutdown) wakes every waiter") {
  net::io_context ioc;
  download_queue q(0, 1);
  REQUIRE(q.try_acquire("a"));
  result_box r1, r2;
  spawn_wait(ioc, q, q.enqueue("b", ioc.get_executor()), 30s, r1);
  spawn_wait(ioc, q, q.enqueue("b", ioc.get_executor()), 30s, r2);
  net::post(ioc, [&] { q.cancel_all(); });
  ioc.run();
  CHECK(r1.value == download_queue::outcome::cancelled);
  CHECK(r2.value == download_queue::outcome::cancelled);
}
