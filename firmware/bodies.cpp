#include "firmware/bodies.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <vector>

#include "crypto/ecb.hpp"
#include "fetch/file_io.hpp"
#include "fetch/landed_reader.hpp"
#include "firmware/firmware_metrics.hpp"
#include "firmware/tar_entries.hpp"
#include "zip/zip_member_reader.hpp"

namespace fusproxy::server {

namespace net = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::uint64_t max_write = 4u << 20;    // per sink call: job state is checked between
constexpr std::uint64_t min_batch = 256u << 10;  // a reader following the fetch waits for this
constexpr std::size_t buffer_size = 256u << 10;  // the bodies that transform bytes (encrypt, unzip)

// A response that carries the file's last byte, and is a real download rather than a probe
// of the tail (zip tools read the central directory first), sends that byte only once the
// build's CRC-32 matched: a client never gets a complete file that failed verification.
bool holds_last_byte(std::uint64_t end, std::uint64_t length, std::uint64_t size) {
  constexpr std::uint64_t probe = 1u << 20;
  return end == size && length > probe;
}

// A range of the whole file, plain or encrypted, following the build's complete fetch. A
// range that holds the file's last byte (holds_last_byte) sends all but that byte, then the
// byte once the job verified the build.
class whole_file_body : public body_source {
 public:
  whole_file_body(std::shared_ptr<body_host> h, build_source s, std::uint64_t size)
      : host_(std::move(h)), source_(std::move(s)), size_(size) {}

  net::awaitable<error_code> write_range(std::uint64_t first, std::uint64_t length,
                                         body_sink& sink) final {
    auto host = host_;
    auto started = host->start_body(source_);
    if (!started) co_return started.error();
    const auto& job = started->job;
    const std::uint64_t end = first + length;
    if (end > size_) co_return make_error_code(stream_errc::upstream_failed);
    const std::uint64_t hold = holds_last_byte(end, length, size_) ? 1 : 0;
    if (auto ec = co_await send(job, first, end - hold, sink)) co_return ec;
    if (hold) {
      if (auto ec = co_await job->wait_done()) co_return ec;
      if (auto ec = co_await send(job, end - hold, end, sink)) co_return ec;
    }
    co_return error_code{};
  }

 protected:
  // Sends bytes [pos, end) of the file as they land.
  virtual net::awaitable<error_code> send(std::shared_ptr<fetch_job> job, std::uint64_t pos,
                                          std::uint64_t end, body_sink& sink) = 0;

  std::shared_ptr<body_host> host_;
  build_source source_;

 private:
  std::uint64_t size_;
};

// The plain zip: the job's file, each landed extent sent from the file.
class plain_body final : public whole_file_body {
 public:
  plain_body(std::shared_ptr<body_host> h, build_source s)
      : whole_file_body(std::move(h), s, s.meta.plain_size) {}

 private:
  net::awaitable<error_code> send(std::shared_ptr<fetch_job> job, std::uint64_t pos,
                                  std::uint64_t end, body_sink& sink) override {
    auto landed = landed_reader::following(std::move(job), pos, end);
    co_return co_await landed.for_each_landed(
        pos, end, {min_batch, max_write},
        [&](std::uint64_t at, std::uint64_t n) -> net::awaitable<error_code> {
          if (auto ec = co_await sink.write_file(landed.fd(), at, n)) co_return ec;
          host_->counters().bytes_plain += n;
          co_return error_code{};
        });
  }
};

// The encrypted file: plain blocks re-encrypted (ECB), the final block padded (PKCS#7).
class encrypted_body final : public whole_file_body {
 public:
  encrypted_body(std::shared_ptr<body_host> h, build_source s)
      : whole_file_body(std::move(h), s, s.meta.size) {}

 private:
  // Whole cipher blocks from the one holding `pos` (the job lands whole blocks, so every
  // landed extent starts and ends on a block or at the file's end), re-encrypted in a buffer.
  net::awaitable<error_code> send(std::shared_ptr<fetch_job> job, std::uint64_t pos,
                                  std::uint64_t end, body_sink& sink) override {
    if (pos >= end) co_return error_code{};
    const std::uint64_t total = source_.meta.size;
    const std::uint64_t plain = source_.meta.plain_size;
    const std::uint64_t first_block = pos - pos % crypto::aes_block;
    const std::uint64_t end16 = std::min(total, (end + 15) / 16 * 16);
    crypto::block_encryptor enc(source_.build.key);
    std::vector<std::uint8_t> buf(buffer_size);
    auto landed = landed_reader::following(std::move(job), pos, end);
    co_return co_await landed.for_each_landed(
        first_block, end16, {buf.size(), buf.size()},
        [&](std::uint64_t at, std::uint64_t n) -> net::awaitable<error_code> {
          const std::uint64_t stop = at + n;
          // Past plain_size the file has no bytes: the final block's pad, made here.
          const std::uint64_t plain_end = std::min(stop, plain);
          if (plain_end > at &&
              pread_full(
                  landed.fd(),
                  std::span<std::uint8_t>(buf.data(), static_cast<std::size_t>(plain_end - at)),
                  at))
            co_return make_error_code(stream_errc::disk);
          if (stop == total) {
            const std::uint64_t last = total - crypto::aes_block;
            auto block = crypto::pkcs7_final_block(
                {buf.data() + (last - at), static_cast<std::size_t>(plain - last)});
            if (!block) co_return block.error();
            std::copy(block->begin(), block->end(),
                      buf.begin() + static_cast<std::ptrdiff_t>(last - at));
          }
          if (auto ec = enc.encrypt({buf.data(), static_cast<std::size_t>(n)}, buf)) co_return ec;
          const std::uint64_t out_begin = std::max(pos, at);
          const std::uint64_t out_end = std::min(end, stop);
          const auto* from = reinterpret_cast<const std::byte*>(buf.data() + (out_begin - at));
          if (auto ec = co_await sink.write({from, static_cast<std::size_t>(out_end - out_begin)}))
            co_return ec;
          host_->counters().bytes_encrypted += out_end - out_begin;
          co_return error_code{};
        });
  }
};

// One zip member, uncompressed: its zip bytes read as they land, through the member reader
// (stored: copied; deflated: inflated), CRC-checked when the range reaches its end.
class member_body final : public body_source {
 public:
  member_body(std::shared_ptr<body_host> h, build_source s, zip::member member,
              std::uint64_t data_offset)
      : host_(std::move(h)),
        source_(std::move(s)),
        member_(std::move(member)),
        data_(data_offset) {}

  net::awaitable<error_code> write_range(std::uint64_t first, std::uint64_t length,
                                         body_sink& sink) override {
    auto host = host_;
    auto started = host->start_body(source_);
    if (!started) co_return started.error();
    auto unzip = zip::member_reader::open(member_, data_, first, first + length);
    if (!unzip) co_return unzip.error();
    const auto input = unzip->input_range();
    std::vector<std::uint8_t> in(buffer_size), out(buffer_size);
    std::uint64_t pos = input.offset;
    const std::uint64_t end = input.offset + input.length;
    std::span<const std::uint8_t> pending;
    auto landed = landed_reader::following(started->job, pos, end);
    while (!unzip->finished()) {
      if (pending.empty() && pos < end) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(in.size(), end - pos));
        if (auto ec = co_await landed.read(pos, {in.data(), n})) co_return ec;
        pending = {in.data(), n};
        pos += n;
      }
      auto step = unzip->transform(pending, out);
      if (!step) co_return step.error();
      pending = pending.subspan(step->consumed);
      if (step->produced > 0) {
        const auto* from = reinterpret_cast<const std::byte*>(out.data());
        if (auto ec = co_await sink.write({from, step->produced})) co_return ec;
      }
    }
    co_return error_code{};
  }

 private:
  std::shared_ptr<body_host> host_;
  build_source source_;
  zip::member member_;
  std::uint64_t data_;
};

// One entry of a tar member: its bytes, fetched sparsely (only the blocks it covers).
class entry_body final : public body_source {
 public:
  entry_body(std::shared_ptr<body_host> h, build_source s, located_member at, archive::tar_entry e)
      : host_(std::move(h)), source_(std::move(s)), at_(std::move(at)), entry_(std::move(e)) {}

  net::awaitable<error_code> write_range(std::uint64_t first, std::uint64_t length,
                                         body_sink& sink) override {
    auto host = host_;
    ++host->counters().bodies;
    auto reading = host->read_member(source_, at_);
    if (!reading) co_return reading.error();
    auto ec = co_await write_entry(*reading->bytes, entry_, first, length, sink);
    host->counters().bytes_plain += length - std::min(length, sink.remaining());
    host->sparse_bytes_landed();
    co_return ec;
  }

 private:
  std::shared_ptr<body_host> host_;
  build_source source_;
  located_member at_;
  archive::tar_entry entry_;
};

// The LZ4-decoded image of an entry: decoded from the nearest independent block the entry's
// index knows; the index learnt here is kept with the build for later ranges.
class decoded_body final : public body_source {
 public:
  decoded_body(std::shared_ptr<body_host> h, build_source s, located_member at,
               archive::tar_entry e, std::shared_ptr<archive::lz4::block_index> index)
      : host_(std::move(h)),
        source_(std::move(s)),
        at_(std::move(at)),
        entry_(std::move(e)),
        index_(std::move(index)) {}

  net::awaitable<error_code> write_range(std::uint64_t first, std::uint64_t length,
                                         body_sink& sink) override {
    auto host = host_;
    ++host->counters().bodies;
    auto reading = host->read_member(source_, at_);
    if (!reading) co_return reading.error();
    // Decoders of one entry may run at once: each works on a copy and the longer index wins.
    auto index = *index_;
    auto ec = co_await write_decoded(*reading->bytes, entry_, index, first, length, &sink);
    if (index.blocks.size() > index_->blocks.size() ||
        (index.decoded_size && !index_->decoded_size))
      *index_ = std::move(index);
    host->lz4_indexes_learnt(source_);
    host->sparse_bytes_landed();
    if (ec)
      host->logger().error("{}: {}/{}: decoding bytes {}-{} failed: {} (connection cut)",
                           source_.meta.plain_filename, at_.m.name, entry_.name, first,
                           first + length, ec.message());
    co_return ec;
  }

 private:
  std::shared_ptr<body_host> host_;
  build_source source_;
  located_member at_;
  archive::tar_entry entry_;
  std::shared_ptr<archive::lz4::block_index> index_;
};

}  // namespace

std::shared_ptr<body_source> make_plain_body(std::shared_ptr<body_host> host, build_source source) {
  return std::make_shared<plain_body>(std::move(host), std::move(source));
}

std::shared_ptr<body_source> make_encrypted_body(std::shared_ptr<body_host> host,
                                                 build_source source) {
  return std::make_shared<encrypted_body>(std::move(host), std::move(source));
}

std::shared_ptr<body_source> make_member_body(std::shared_ptr<body_host> host, build_source source,
                                              zip::member m, std::uint64_t data_offset) {
  return std::make_shared<member_body>(std::move(host), std::move(source), std::move(m),
                                       data_offset);
}

std::shared_ptr<body_source> make_entry_body(std::shared_ptr<body_host> host, build_source source,
                                             located_member at, archive::tar_entry entry) {
  return std::make_shared<entry_body>(std::move(host), std::move(source), std::move(at),
                                      std::move(entry));
}

std::shared_ptr<body_source> make_decoded_body(std::shared_ptr<body_host> host, build_source source,
                                               located_member at, archive::tar_entry entry,
                                               std::shared_ptr<archive::lz4::block_index> index) {
  return std::make_shared<decoded_body>(std::move(host), std::move(source), std::move(at),
                                        std::move(entry), std::move(index));
}

}  // namespace fusproxy::server
