#pragma once
// Reading a fetch job's file while its bytes land: the one loop behind every body and zip
// member read, "wait until the bytes are present -> read them (or hand on where they are)".
//
//   read(pos, out)             fills `out` with bytes [pos, pos + out.size()): waits until
//                              all of them landed (fetch_job::wait_for), then preads them.
//   for_each_landed(pos, end)  hands [pos, end) on in order as it lands, as extents
//                              [at, at + n) of the file: the caller sends them from the file
//                              (sendfile: fd() + offset) or reads what it needs itself.
//
// How it waits is chosen when it is made:
//   following(job, pos, end)  a client stream reading [pos, end) in order from a complete
//                             fetch: it is the job's follower (fetch_job::follower: the job
//                             claims a window ahead of the furthest follower rather than
//                             racing to disk), and its waits start the complete fetch.
//   sparse(job)               a reader of a part of the build (tar headers, an entry): each
//                             wait declares its range as an interest; nothing else is fetched.
//
// Positions are the job's (cipher) positions; the file holds the plain bytes, so past
// plain_size a landed extent has no bytes in the file (the final block's pad: encrypted
// bodies read up to plain_size). A wait that fails returns the job's error (failed,
// crc_mismatch, cancelled) or operation_aborted (this reader's wait was cancelled); a read
// of the file that fails is stream_errc::disk.
//
// Generic over the job so that a test can script the landing: a Job offers fd(),
// wait_for(pos, until, sparse) with fetch_job's contract, and a `follower{job, pos, end}`
// with move_to(pos). landed_reader is the one over fetch_job.
#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "fetch/fetch_job.hpp"
#include "fetch/file_io.hpp"

namespace fusproxy::server {

// How much for_each_landed hands on at once.
struct extent_sizes {
  // Waits until this many bytes landed from the extent's start (fewer at the range's end): a
  // client following the fetch gets large writes rather than one per landed piece.
  std::uint64_t at_least;
  // Hands on at most this many even when more landed: the job's state is looked at again
  // between extents.
  std::uint64_t at_most;
};

template <class Job>
class basic_landed_reader {
 public:
  static basic_landed_reader following(std::shared_ptr<Job> job, std::uint64_t pos,
                                       std::uint64_t end) {
    return basic_landed_reader(std::move(job), pos, end);
  }
  static basic_landed_reader sparse(std::shared_ptr<Job> job) {
    return basic_landed_reader(std::move(job));
  }
  basic_landed_reader(const basic_landed_reader&) = delete;
  basic_landed_reader& operator=(const basic_landed_reader&) = delete;

  const std::shared_ptr<Job>& job() const { return job_; }
  int fd() const { return job_->fd(); }

  boost::asio::awaitable<boost::system::error_code> read(std::uint64_t pos,
                                                         std::span<std::uint8_t> out) {
    const std::uint64_t end = pos + out.size();
    for (std::uint64_t at = pos; at < end;) {
      follow(at);
      auto until = co_await job_->wait_for(at, end, sparse_);
      if (!until) co_return until.error();
      const std::uint64_t stop = std::min(*until, end);
      if (pread_full(job_->fd(), out.subspan(at - pos, stop - at), at))
        co_return make_error_code(stream_errc::disk);
      at = stop;
    }
    co_return boost::system::error_code{};
  }

  // `take(at, n)` is a coroutine returning an error_code; an error ends the loop with it.
  template <class Take>
  boost::asio::awaitable<boost::system::error_code> for_each_landed(std::uint64_t pos,
                                                                    std::uint64_t end,
                                                                    extent_sizes sizes, Take take) {
    while (pos < end) {
      follow(pos);
      auto until = co_await job_->wait_for(pos, std::min(end, pos + sizes.at_least), sparse_);
      if (!until) co_return until.error();
      const std::uint64_t stop = std::min({*until, end, pos + sizes.at_most});
      if (auto ec = co_await take(pos, stop - pos)) co_return ec;
      pos = stop;
    }
    co_return boost::system::error_code{};
  }

 private:
  basic_landed_reader(std::shared_ptr<Job> job, std::uint64_t pos, std::uint64_t end)
      : job_(std::move(job)), sparse_(false) {
    follower_.emplace(job_, pos, end);
  }
  explicit basic_landed_reader(std::shared_ptr<Job> job) : job_(std::move(job)), sparse_(true) {}

  void follow(std::uint64_t pos) {
    if (follower_) follower_->move_to(pos);
  }

  std::shared_ptr<Job> job_;
  bool sparse_;
  std::optional<typename Job::follower> follower_;
};

using landed_reader = basic_landed_reader<fetch_job>;

}  // namespace fusproxy::server
