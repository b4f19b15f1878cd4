#include "firmware/member_source.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "fetch/landed_reader.hpp"
#include "zip/zip_member_reader.hpp"

namespace fusproxy::server {
namespace net = boost::asio;

namespace {

class stored_source final : public member_source {
 public:
  stored_source(std::shared_ptr<fetch_job> job, zip::member m, std::uint64_t data)
      : zip_(landed_reader::sparse(std::move(job))), m_(std::move(m)), data_(data) {}
  std::uint64_t size() const override { return m_.size; }
  void prefetch(std::uint64_t offset, std::uint64_t length) override {
    ahead_.reset();
    offset = std::min(offset, m_.size);
    length = std::min(length, m_.size - offset);
    if (length > 0) ahead_.emplace(zip_.job(), data_ + offset, data_ + offset + length);
  }
  net::awaitable<boost::system::error_code> read(std::uint64_t offset,
                                                 std::span<std::uint8_t> out) override {
    if (offset > m_.size || out.size() > m_.size - offset)
      co_return make_error_code(zip::errc::bad_range);
    co_return co_await zip_.read(data_ + offset, out);
  }

 private:
  landed_reader zip_;  // the plain zip's bytes, read sparsely
  zip::member m_;
  std::uint64_t data_;
  std::optional<fetch_job::interest> ahead_;
};

// Inflates from the member's start; the compressed bytes are declared ahead of the inflater
// (a window), so that the job fetches them in parallel while it inflates.
class deflated_source final : public member_source {
 public:
  static constexpr std::uint64_t window = 32u << 20;

  deflated_source(std::shared_ptr<fetch_job> job, zip::member m, std::uint64_t data)
      : zip_(landed_reader::sparse(std::move(job))), m_(std::move(m)), data_(data) {}
  std::uint64_t size() const override { return m_.size; }
  void prefetch(std::uint64_t, std::uint64_t) override {}  // the window ahead does it
  net::awaitable<boost::system::error_code> read(std::uint64_t offset,
                                                 std::span<std::uint8_t> out) override {
    if (offset > m_.size || out.size() > m_.size - offset)
      co_return make_error_code(zip::errc::bad_range);
    if (!reader_ || offset < produced_) {  // behind: from the start again
      auto r = zip::member_reader::open(m_, data_);
      if (!r) co_return r.error();
      reader_.emplace(std::move(*r));
      produced_ = 0;
      in_pos_ = data_;
      pending_ = {};
    }
    std::vector<std::uint8_t> skip;
    std::size_t got = 0;
    while (got < out.size()) {
      if (pending_.empty()) {
        const std::uint64_t end = data_ + m_.compressed_size;
        if (in_pos_ >= end) co_return make_error_code(zip::errc::truncated_data);
        if (in_pos_ + (window / 4) > ahead_end_ && ahead_end_ < end) {
          ahead_end_ = std::min(end, in_pos_ + window);
          ahead_.reset();
          ahead_.emplace(zip_.job(), in_pos_, ahead_end_);
        }
        in_.resize(256u << 10);
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(in_.size(), end - in_pos_));
        if (auto ec = co_await zip_.read(in_pos_, {in_.data(), n})) co_return ec;
        in_pos_ += n;
        pending_ = {in_.data(), n};
      }
      std::span<std::uint8_t> dst;
      if (produced_ < offset) {  // before the range: inflate and discard
        skip.resize(64u << 10);
        dst = {skip.data(),
               static_cast<std::size_t>(std::min<std::uint64_t>(skip.size(), offset - produced_))};
      } else {
        dst = out.subspan(got);
      }
      auto step = reader_->transform(pending_, dst);
      if (!step) co_return step.error();
      pending_ = pending_.subspan(step->consumed);
      produced_ += step->produced;
      if (produced_ > offset) got = static_cast<std::size_t>(produced_ - offset);
      if (step->consumed == 0 && step->produced == 0 && reader_->finished() && got < out.size())
        co_return make_error_code(zip::errc::truncated_data);
    }
    co_return boost::system::error_code{};
  }

 private:
  landed_reader zip_;  // the plain zip's bytes, read sparsely
  zip::member m_;
  std::uint64_t data_;
  std::optional<zip::member_reader> reader_;
  std::uint64_t produced_ = 0;  // member offset the inflater reached
  std::uint64_t in_pos_ = 0;    // zip offset of the next compressed byte to read
  std::vector<std::uint8_t> in_;
  std::span<const std::uint8_t> pending_;
  std::uint64_t ahead_end_ = 0;
  std::optional<fetch_job::interest> ahead_;
};

}  // namespace

std::unique_ptr<member_source> make_member_source(std::shared_ptr<fetch_job> job, zip::member m,
                                                  std::uint64_t data_offset) {
  if (m.method == zip::method_deflated)
    return std::make_unique<deflated_source>(std::move(job), std::move(m), data_offset);
  return std::make_unique<stored_source>(std::move(job), std::move(m), data_offset);
}

}  // namespace fusproxy::server
