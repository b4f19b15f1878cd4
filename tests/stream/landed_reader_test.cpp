// fetch/landed_reader.hpp over a scripted job: bytes land in pieces into a real temporary
// file while a reader waits (fetch_job::wait_for's contract, without upstream), so each test
// decides exactly what is present when.
#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <optional>
#include <tuple>
#include <vector>

#include "fetch/landed_reader.hpp"

namespace {

namespace net = boost::asio;
using boost::system::error_code;
using fusproxy::server::basic_landed_reader;
using fusproxy::server::stream_errc;

std::uint8_t pattern(std::uint64_t i) {
  return static_cast<std::uint8_t>(i * 7 + 3);
}

// A job whose bytes land when the test says (land), or that fails when it says (fail). Its
// wait_for keeps fetch_job's contract: the end of the present run from pos once
// [pos, max(pos + 1, min(until, total))) is present, else the job's error.
class scripted_job {
 public:
  scripted_job(net::any_io_executor ex, std::uint64_t total)
      : ex_(std::move(ex)), total_(total), present_(total, false) {
    char name[] = "/tmp/fusproxy-landed-reader-XXXXXX";
    fd_ = ::mkstemp(name);
    REQUIRE(fd_ >= 0);
    ::unlink(name);
  }
  ~scripted_job() { ::close(fd_); }

  // Bytes [begin, end) of the pattern land: in the file, then in the present map.
  void land(std::uint64_t begin, std::uint64_t end) {
    std::vector<std::uint8_t> bytes;
    for (auto i = begin; i < end; ++i) bytes.push_back(pattern(i));
    REQUIRE_FALSE(fusproxy::server::pwrite_full(fd_, std::span<const std::uint8_t>(bytes), begin));
    mark(begin, end);
  }
  // The map says [begin, end) is present, the file does not hold it (a truncated file).
  void mark(std::uint64_t begin, std::uint64_t end) {
    for (auto i = begin; i < end; ++i) present_[i] = true;
    wake();
  }
  void fail(error_code ec) {
    error_ = ec;
    wake();
  }

  int fd() const { return fd_; }
  net::awaitable<boost::system::result<std::uint64_t>> wait_for(std::uint64_t pos,
                                                                std::uint64_t until, bool sparse) {
    waits.push_back({pos, until, sparse});
    if (pos >= total_) co_return make_error_code(stream_errc::upstream_failed);
    const std::uint64_t need = std::max(pos + 1, std::min(until, total_));
    for (;;) {
      if (error_) co_return error_;
      const auto run = present_until(pos);
      if (run >= need) co_return run;
      net::steady_timer timer(ex_, net::steady_timer::time_point::max());
      waiting_.push_back(&timer);
      co_await timer.async_wait(net::as_tuple(net::use_awaitable));
      std::erase(waiting_, &timer);
    }
  }

  class follower {
   public:
    follower(std::shared_ptr<scripted_job> job, std::uint64_t pos, std::uint64_t end)
        : job_(std::move(job)) {
      job_->follows.push_back(pos);
      job_->follow_ends.push_back(end);
    }
    void move_to(std::uint64_t pos) { job_->follows.push_back(pos); }

   private:
    std::shared_ptr<scripted_job> job_;
  };

  struct wait {
    std::uint64_t pos, until;
    bool sparse;
  };
  std::vector<wait> waits;                 // every wait_for call
  std::vector<std::uint64_t> follows;      // the follower's positions, in order
  std::vector<std::uint64_t> follow_ends;  // the ends followers were made with
  std::size_t waiting() const { return waiting_.size(); }

 private:
  std::uint64_t present_until(std::uint64_t pos) const {
    while (pos < total_ && present_[pos]) ++pos;
    return pos;
  }
  void wake() {
    for (auto* t : waiting_) t->cancel();
  }

  net::any_io_executor ex_;
  std::uint64_t total_;
  std::vector<bool> present_;
  error_code error_;
  int fd_ = -1;
  std::vector<net::steady_timer*> waiting_;
};

using reader = basic_landed_reader<scripted_job>;

// The outcome of a spawned read, once it completed.
struct outcome {
  bool done = false;
  error_code ec;
};
void spawn(net::io_context& io, net::awaitable<error_code> op, outcome& out) {
  net::co_spawn(io, std::move(op), [&out](std::exception_ptr e, error_code ec) {
    REQUIRE_FALSE(e);
    out.done = true;
    out.ec = ec;
  });
}

bool is_pattern(std::span<const std::uint8_t> bytes, std::uint64_t from) {
  for (std::size_t i = 0; i < bytes.size(); ++i)
    if (bytes[i] != pattern(from + i)) return false;
  return true;
}

}  // namespace

TEST_CASE("landed_reader: read fills the buffer once its bytes landed in pieces", "[landed]") {
  net::io_context io;
  auto job = std::make_shared<scripted_job>(io.get_executor(), 4096);
  auto r = reader::sparse(job);
  std::vector<std::uint8_t> out(3000);
  outcome got;
  spawn(io, r.read(0, out), got);
  io.poll();
  CHECK_FALSE(got.done);
  job->land(0, 1000);
  io.poll();
  CHECK_FALSE(got.done);  // woken, still short of 3000: waits again
  CHECK(job->waiting() == 1);
  job->land(1000, 2000);
  io.poll();
  CHECK_FALSE(got.done);
  job->land(2000, 4096);
  io.poll();
  REQUIRE(got.done);
  CHECK_FALSE(got.ec);
  CHECK(is_pattern(out, 0));
  // A sparse reader: every wait declares its whole range, no follower.
  REQUIRE_FALSE(job->waits.empty());
  for (const auto& w : job->waits) {
    CHECK(w.pos == 0);
    CHECK(w.until == 3000);
    CHECK(w.sparse);
  }
  CHECK(job->follows.empty());
}

TEST_CASE("landed_reader: a range spanning a gap waits until the gap fills", "[landed]") {
  net::io_context io;
  auto job = std::make_shared<scripted_job>(io.get_executor(), 4096);
  job->land(0, 1000);
  job->land(2000, 4096);
  auto r = reader::sparse(job);
  std::vector<std::uint8_t> out(2000);
  outcome got;
  spawn(io, r.read(500, out), got);
  io.poll();
  CHECK_FALSE(got.done);  // [1000, 2000) is missing
  job->land(1000, 1500);
  io.poll();
  CHECK_FALSE(got.done);
  job->land(1500, 2000);
  io.poll();
  REQUIRE(got.done);
  CHECK_FALSE(got.ec);
  CHECK(is_pattern(out, 500));
}

TEST_CASE("landed_reader: a failed job ends the wait with its error", "[landed]") {
  net::io_context io;
  auto job = std::make_shared<scripted_job>(io.get_executor(), 4096);
  job->land(0, 100);
  auto r = reader::following(job, 0, 4096);

  SECTION("read") {
    std::vector<std::uint8_t> out(1000);
    outcome got;
    spawn(io, r.read(0, out), got);
    io.poll();
    CHECK_FALSE(got.done);
    job->fail(make_error_code(stream_errc::crc_mismatch));
    io.poll();
    REQUIRE(got.done);
    CHECK(got.ec == stream_errc::crc_mismatch);
  }
  SECTION("for_each_landed, after an extent went out") {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> extents;
    outcome got;
    spawn(io,
          r.for_each_landed(0, 4096, {100, 1000},
                            [&](std::uint64_t at, std::uint64_t n) -> net::awaitable<error_code> {
                              extents.emplace_back(at, n);
                              co_return error_code{};
                            }),
          got);
    io.poll();
    CHECK_FALSE(got.done);
    CHECK(extents == decltype(extents){{0, 100}});
    job->fail(make_error_code(stream_errc::upstream_failed));
    io.poll();
    REQUIRE(got.done);
    CHECK(got.ec == stream_errc::upstream_failed);
    CHECK(extents.size() == 1);
  }
}

TEST_CASE("landed_reader: for_each_landed hands on landed extents in order", "[landed]") {
  net::io_context io;
  auto job = std::make_shared<scripted_job>(io.get_executor(), 4096);
  auto r = reader::following(job, 0, 4096);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> extents;
  bool bytes_right = true;
  outcome got;
  spawn(io,
        r.for_each_landed(0, 4096, {1000, 1500},
                          [&](std::uint64_t at, std::uint64_t n) -> net::awaitable<error_code> {
                            extents.emplace_back(at, n);
                            // The extent is in the file now: what a sendfile would send.
                            std::vector<std::uint8_t> bytes(n);
                            REQUIRE_FALSE(fusproxy::server::pread_full(
                                r.fd(), std::span<std::uint8_t>(bytes), at));
                            bytes_right = bytes_right && is_pattern(bytes, at);
                            co_return error_code{};
                          }),
        got);
  io.poll();
  job->land(0, 600);
  io.poll();
  CHECK(extents.empty());  // fewer than at_least landed: no small write
  job->land(600, 2000);
  io.poll();
  // 2000 landed; at most 1500 at once, then [1500, 2000) is short of at_least: waits.
  CHECK(extents == decltype(extents){{0, 1500}});
  job->land(2000, 4096);
  io.poll();
  REQUIRE(got.done);
  CHECK_FALSE(got.ec);
  CHECK(extents == decltype(extents){{0, 1500}, {1500, 1500}, {3000, 1096}});
  CHECK(bytes_right);
  // A following reader: the follower made over its range and moved to each extent's start;
  // its waits start the complete fetch (not sparse).
  CHECK(job->follow_ends == std::vector<std::uint64_t>{4096});
  CHECK(job->follows.front() == 0);
  CHECK(job->follows.back() == 3000);
  for (const auto& w : job->waits) CHECK_FALSE(w.sparse);
}

TEST_CASE("landed_reader: the taker's error ends the loop", "[landed]") {
  net::io_context io;
  auto job = std::make_shared<scripted_job>(io.get_executor(), 4096);
  job->land(0, 4096);
  auto r = reader::following(job, 0, 4096);
  int calls = 0;
  outcome got;
  spawn(io,
        r.for_each_landed(0, 4096, {100, 1000},
                          [&](std::uint64_t, std::uint64_t) -> net::awaitable<error_code> {
                            ++calls;
                            co_return make_error_code(net::error::broken_pipe);
                          }),
        got);
  io.poll();
  REQUIRE(got.done);
  CHECK(got.ec == net::error::broken_pipe);
  CHECK(calls == 1);
}

TEST_CASE("landed_reader: a read that cannot be served fails at once", "[landed]") {
  net::io_context io;
  auto job = std::make_shared<scripted_job>(io.get_executor(), 4096);
  std::uint64_t pos = 0;
  error_code expected;
  SECTION("bytes the map has but the file lacks: a disk error") {
    job->land(0, 100);
    job->mark(100, 4096);  // the file ends at 100
    expected = make_error_code(stream_errc::disk);
  }
  SECTION("past the job's end: the job's answer to a wait there") {
    job->land(0, 4096);
    pos = 4000;
    expected = make_error_code(stream_errc::upstream_failed);
  }
  auto r = reader::sparse(job);
  std::vector<std::uint8_t> out(1000);
  outcome got;
  spawn(io, r.read(pos, out), got);
  io.poll();
  REQUIRE(got.done);
  CHECK(got.ec == expected);
}
