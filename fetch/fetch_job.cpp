#include "fetch/fetch_job.hpp"

#include <fcntl.h>
#include <spdlog/logger.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <list>
#include <optional>
#include <system_error>

#include "crypto/crc32.hpp"
#include "crypto/ecb.hpp"
#include "crypto/md5.hpp"
#include "fetch/file_io.hpp"
#include "firmware/model/errors.hpp"
#include "net/task_group.hpp"
#include "obs/metrics.hpp"

namespace fusproxy::server {

namespace net = boost::asio;
namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
// For the hops to the landing pool: a batch is a short CPU/disk job that is not cancelled,
// and a cancellation of the job must not be forwarded by co_spawn into another thread.
auto on_pool() {
  return net::bind_cancellation_slot(net::cancellation_slot(), use_tuple);
}

// --- errors ---------------------------------------------------------------------------------

namespace {
class stream_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "fusproxy.stream"; }
  std::string message(int ev) const override {
    switch (static_cast<stream_errc>(ev)) {
      case stream_errc::upstream_failed:
        return "the upstream fetch failed";
      case stream_errc::crc_mismatch:
        return "the fetched file's CRC-32 differs from BINARY_CRC";
      case stream_errc::bad_padding:
        return "the final block's padding disagrees with the plain size";
      case stream_errc::disk:
        return "the cache file could not be written";
      case stream_errc::no_space:
        return "the cache is full (no space left for this build)";
      case stream_errc::cancelled:
        return "the fetch was stopped";
    }
    return "unknown stream error";
  }
};
}  // namespace

const boost::system::error_category& stream_category() noexcept {
  static const stream_category_impl c;
  return c;
}
boost::system::error_code make_error_code(stream_errc e) noexcept {
  return {static_cast<int>(e), stream_category()};
}

std::string_view to_string(job_state s) {
  switch (s) {
    case job_state::idle:
      return "idle";
    case job_state::fetching:
      return "fetching";
    case job_state::verified:
      return "verified";
    case job_state::failed:
      return "failed";
    case job_state::crc_mismatch:
      return "crc_mismatch";
  }
  return "unknown";
}

// --- the Asio side of a job -----------------------------------------------------------------

namespace {
// A reader waiting for one byte: woken (timer cancelled) when it lands or the job ends.
struct waiter {
  std::uint64_t pos;
  std::uint64_t until;  // woken when [pos, until) is present
  net::steady_timer timer;
};

// `budget` (tests only, --test-disk-full-after): bytes left before writes fail with ENOSPC.
bool write_all(int fd, const std::uint8_t* data, std::size_t n, std::uint64_t offset,
               std::atomic<std::uint64_t>* budget) {
  if (budget) {
    auto left = budget->load();
    do {
      if (left < n) {
        budget->store(0);
        errno = ENOSPC;
        return false;
      }
    } while (!budget->compare_exchange_weak(left, left - n));
  }
  if (const auto ec = pwrite_full(fd, std::span<const std::uint8_t>(data, n), offset)) {
    errno = ec.value();
    return false;
  }
  return true;
}

bool read_all(int fd, std::uint8_t* data, std::size_t n, std::uint64_t offset) {
  return !pread_full(fd, std::span<std::uint8_t>(data, n), offset);
}

// Feeds `sink` the cipher bytes [begin, end) recomputed from the plain bytes on disk
// (re-encrypted, the final block re-padded); false when they cannot be read.
template <class Sink>
bool cipher_on_disk(int fd, const crypto::aes_key& key, std::uint64_t begin, std::uint64_t end,
                    std::uint64_t total, std::uint64_t plain_size, Sink&& sink) {
  crypto::block_encryptor enc(key);
  std::vector<std::uint8_t> buf(4u << 20);
  for (std::uint64_t at = begin; at < end;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - at));
    const std::uint64_t plain_end = std::min(at + n, plain_size);
    if (plain_end > at && !read_all(fd, buf.data(), plain_end - at, at)) return false;
    if (at + n == total) {
      const std::uint64_t last = total - crypto::aes_block;
      auto block = crypto::pkcs7_final_block(
          {buf.data() + (last - at), static_cast<std::size_t>(plain_size - last)});
      if (!block) return false;
      std::copy(block->begin(), block->end(), buf.begin() + static_cast<std::ptrdiff_t>(last - at));
    }
    if (enc.encrypt({buf.data(), n}, buf)) return false;
    sink(std::span<const std::uint8_t>(buf.data(), n));
    at += n;
  }
  return true;
}

// The CRC-32 of cipher bytes [begin, end) as upstream sent them; nullopt when unreadable.
std::optional<std::uint32_t> cipher_crc_on_disk(int fd, const crypto::aes_key& key,
                                                std::uint64_t begin, std::uint64_t end,
                                                std::uint64_t total, std::uint64_t plain_size) {
  crypto::crc32 crc;
  if (!cipher_on_disk(fd, key, begin, end, total, plain_size,
                      [&](std::span<const std::uint8_t> b) { crc.update(b); }))
    return std::nullopt;
  return crc.value();
}

// The MD5 of the whole encrypted file (upstream's Content-MD5); nullopt when unreadable.
std::optional<crypto::md5_digest> cipher_md5_on_disk(int fd, const crypto::aes_key& key,
                                                     std::uint64_t total,
                                                     std::uint64_t plain_size) {
  crypto::md5 md5;
  if (!cipher_on_disk(fd, key, 0, total, total, plain_size,
                      [&](std::span<const std::uint8_t> b) { md5.update(b); }))
    return std::nullopt;
  return md5.finish();
}
}  // namespace

struct fetch_job::impl {
  impl(net::any_io_executor ex, upstream::fus_client& client, std::shared_ptr<spdlog::logger> log,
       const std::string& name)
      : session(client),
        slot(ex, steady::time_point::max()),
        done(ex, steady::time_point::max()),
        tasks(ex, std::move(log), "fetch " + name) {}
  upstream::fus_session session;
  std::list<waiter*> waiters;
  net::steady_timer slot;  // parked workers wait here (the governor's target / job end)
  net::steady_timer done;  // wait_done()
  // The workers, the check of resumed bytes and the publication: owned, cancelled by
  // stop(); an exception fails the job (never leaves it `fetching`).
  task_group tasks;
};

struct fetch_job::worker_state {
  fetch::worker_id id = 0;
  unsigned streak = 0;      // consecutive failures without progress
  bool progressed = false;  // bytes received since the last failure
  std::uint64_t seen_generation = 0;
  std::uint64_t reads = 0;  // read_some calls in the current claim (debug log)
  bool first_byte = false;  // the current claim's first body byte arrived (TTFB recorded)
  std::vector<std::uint8_t> buffer;
  // The worker's own: a batch may be landing on another thread while others land.
  std::optional<crypto::block_decryptor> decryptor;
  // Cutting: the scheduler closes the worker's connection by cancelling its pending read.
  net::cancellation_signal cut_signal;
  bool in_read = false;
  bool cut = false;              // set by fetch_job::cut(); the claim ends, no failure
  std::uint64_t last_claim = 0;  // size of its previous claim (claims grow)
};

fetch_job::fetch_job(net::any_io_executor executor, upstream::fus_client& client,
                     build_source source, fetch_options options, job_files files,
                     std::shared_ptr<spdlog::logger> log, fetch::present_map present)
    : io_(std::make_unique<impl>(executor, client, log, source.meta.filename)),
      executor_(std::move(executor)),
      client_(client),
      source_(std::move(source)),
      options_(options),
      files_(std::move(files)),
      log_(std::move(log)),
      plan_(std::move(present), options.chunk_size),
      retry_(options.retry, plan_.chunk_count()),
      governor_(std::max(1u, options.connections), std::max(1u, options.connections_start),
                steady::now()),
      bucket_(options.max_bps, steady::now()) {}

fetch_job::~fetch_job() {
  if (fd_ >= 0) ::close(fd_);
}

boost::system::result<std::shared_ptr<fetch_job>> fetch_job::open(
    net::any_io_executor executor, upstream::fus_client& client, build_source source,
    fetch_options options, job_files files, std::shared_ptr<spdlog::logger> log, bool sparse) {
  return open_with_prefix(std::move(executor), client, std::move(source), options, std::move(files),
                          std::move(log), 0, sparse);
}

boost::system::result<std::shared_ptr<fetch_job>> fetch_job::open_with_prefix(
    net::any_io_executor executor, upstream::fus_client& client, build_source source,
    fetch_options options, job_files files, std::shared_ptr<spdlog::logger> log,
    std::uint64_t plain_prefix, bool sparse) {
  const std::uint64_t total = source.meta.size;
  const std::uint64_t plain = source.meta.plain_size;
  if (total < 16 || total % 16 != 0 || plain >= total || total - plain > 16)
    return make_error_code(stream_errc::bad_padding);
  std::error_code fec;
  if (!files.part.parent_path().empty()) fs::create_directories(files.part.parent_path(), fec);
  if (!files.final.parent_path().empty()) fs::create_directories(files.final.parent_path(), fec);

  fetch::present_map present(total);
  std::vector<resumed_run> unverified;
  bool published = false;
  int fd = -1;
  // A published file is verified: it is only renamed there after its CRC matched.
  if (std::error_code e;
      fs::is_regular_file(files.final, e) && fs::file_size(files.final, e) == plain) {
    fd = ::open(files.final.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      present.insert(0, total, source.meta.crc32.value_or(0));
      published = true;
    }
  }
  if (!published) {
    fd = ::open(files.part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return make_error_code(stream_errc::disk);
    struct stat st {};
    ::fstat(fd, &st);
    const auto existing = static_cast<std::uint64_t>(st.st_size);
    bool resumed = false;
    if (!files.map.empty() && existing == plain) {
      if (auto text = read_whole_file(files.map)) {
        if (auto m = fetch::parse_saved_map(*text); m && m->present.total() == total) {
          if (m->synced)
            present = std::move(m->present);
          else
            for (const auto& [b, r] : m->present.runs()) unverified.push_back({b, r.end, r.crc});
          resumed = true;
        }
      }
    }
    if (!resumed && plain_prefix > 0) {
      // Trust the prefix (rounded down to 16, never the final block): recompute its cipher
      // CRC by re-encrypting it.
      std::uint64_t keep = std::min({plain_prefix, existing, total - 16});
      keep -= keep % 16;
      crypto::block_encryptor enc(source.build.key);
      crypto::crc32 crc;
      std::vector<std::uint8_t> buf(4u << 20);
      for (std::uint64_t at = 0; at < keep;) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), keep - at));
        if (!read_all(fd, buf.data(), n, at) || enc.encrypt({buf.data(), n}, buf)) {
          ::close(fd);
          return make_error_code(stream_errc::disk);
        }
        crc.update({buf.data(), n});
        at += n;
      }
      if (keep > 0) present.insert(0, keep, crc.value());
    }
    if (::ftruncate(fd, static_cast<off_t>(plain)) != 0) {
      ::close(fd);
      return make_error_code(stream_errc::disk);
    }
    // Reserve the blocks now: a full disk is an error at the start, not in the middle. A
    // sparse job reserves them when it turns complete (start()).
    if (const int e = sparse ? 0 : ::posix_fallocate(fd, 0, static_cast<off_t>(plain));
        e == ENOSPC) {
      ::close(fd);
      std::error_code ignored;
      if (!resumed) {
        fs::remove(files.part, ignored);
        if (!files.map.empty()) fs::remove(files.map, ignored);
      }
      return make_error_code(stream_errc::no_space);
    }
  }
  std::shared_ptr<fetch_job> job(new fetch_job(std::move(executor), client, std::move(source),
                                               options, std::move(files), std::move(log),
                                               std::move(present)));
  job->fd_ = fd;
  job->reserved_ = published || !sparse;
  job->unverified_ = std::move(unverified);
  if (published) {
    job->published_ = true;
    job->state_ = job_state::verified;
  }
  return job;
}

const fs::path& fetch_job::file_path() const {
  return published_ ? files_.final : files_.part;
}

job_progress fetch_job::progress() const {
  job_progress p;
  p.state = state_;
  p.total = plan_.total();
  p.present = plan_.present().present_bytes();
  p.rate = meter_.rate(steady::now());
  p.connections = active_;
  p.target = governor_.target();
  p.ceiling = governor_.max();
  const auto now = steady::now();
  for (const auto& [id, rate] : rates_.rates(now)) {
    connection_progress c{id, rate};
    if (auto h = plan_.holding(id)) c.begin = h->begin, c.end = h->end;
    c.helper = plan_.victim_of(id).has_value();
    p.per_connection.push_back(c);
  }
  p.gets = gets_;
  p.hedges = hedges_;
  p.cuts = cuts_;
  p.splits = splits_;
  p.retries = retry_.failures();
  p.sheds = governor_.sheds();
  p.crc = plan_.present().whole_crc().value_or(0);
  p.error = error_text_;
  p.readers = io_->waiters.size();
  return p;
}

// --- control --------------------------------------------------------------------------------

void fetch_job::start(bool complete) {
  if (complete && !complete_) {
    complete_ = true;
    plan_.set_sparse(false);
    if (!reserved_ && !published_ && fd_ >= 0) {
      reserved_ = true;
      if (::posix_fallocate(fd_, 0, static_cast<off_t>(source_.meta.plain_size)) == ENOSPC) {
        fail(make_error_code(stream_errc::no_space), "no space left to complete the build");
        return;
      }
    }
    io_->slot.cancel();  // parked workers: the whole build is wanted now
  }
  if (state_ != job_state::idle) return;
  plan_.set_sparse(!complete_);
  state_ = job_state::fetching;
  if (!unverified_.empty()) {
    io_->tasks.spawn(check_resumed(shared_from_this()), "check of resumed bytes",
                     fail_on_exception("checking the resumed bytes"));
    return;
  }
  begin_fetch();
}

// Runs a map saved while fetching says present are checked against the disk before anything
// reads them (readers wait): a run whose bytes on disk do not give its CRC (a power loss
// took them) is fetched again. Then the workers start.
net::awaitable<void> fetch_job::check_resumed(std::shared_ptr<fetch_job> self) {
  std::uint64_t kept = 0, dropped = 0;
  const int fd = self->fd_;
  const auto key = self->source_.build.key;
  const std::uint64_t total = self->plan_.total();
  const std::uint64_t plain_size = self->source_.meta.plain_size;
  while (!self->unverified_.empty() && self->state_ == job_state::fetching) {
    const auto run = self->unverified_.front();
    const auto check = [fd, key, run, total, plain_size] {
      return cipher_crc_on_disk(fd, key, run.begin, run.end, total, plain_size);
    };
    std::optional<std::uint32_t> crc;
    if (self->options_.land_on) {
      auto [ep, r] = co_await net::co_spawn(
          self->options_.land_on,
          [check]() -> net::awaitable<std::optional<std::uint32_t>> { co_return check(); },
          on_pool());
      if (!ep) crc = r;
    } else {
      crc = check();
    }
    self->unverified_.erase(self->unverified_.begin());
    if (self->state_ != job_state::fetching) break;
    if (crc == run.crc && self->plan_.restore(run.begin, run.end, run.crc)) {
      kept += run.end - run.begin;
      self->wake_readers();
    } else {
      dropped += run.end - run.begin;
      self->log_->warn(
          "fetch {}: bytes {}-{} of the saved map are not on disk as fetched "
          "(an unclean stop): fetched again",
          self->source_.meta.filename, run.begin, run.end);
    }
  }
  if (self->state_ != job_state::fetching) co_return;
  self->log_->info(
      "fetch {}: resumed after an unclean stop: {} bytes checked on disk and kept, "
      "{} to fetch again",
      self->source_.meta.filename, kept, dropped);
  self->save_map();
  self->begin_fetch();
}

void fetch_job::begin_fetch() {
  if (plan_.present().complete()) {
    landed_complete();
    return;
  }
  last_save_ = steady::now();
  log_->info("fetch {}: {} bytes ({} present), {} connections, chunks of {} bytes",
             source_.meta.filename, plan_.total(), plan_.present().present_bytes(), governor_.max(),
             plan_.chunk_size());
  // One worker more than the ceiling: a hedge may briefly hold one connection above it.
  workers_.assign(governor_.max() + 1, nullptr);
  for (unsigned i = 0; i <= governor_.max(); ++i) {
    ++workers_running_;
    io_->tasks.spawn(run_worker(shared_from_this(), i), "worker",
                     fail_on_exception("fetch worker"));
  }
  started_ = steady::now();
  // A sparse job that went idle and starts again within a tick still has its supervisor.
  if (!supervising_) {
    supervising_ = true;
    io_->tasks.spawn(supervise(shared_from_this()), "supervisor",
                     fail_on_exception("fetch supervisor"));
  }
}

fetch_job::interest::interest(std::shared_ptr<fetch_job> job, std::uint64_t begin,
                              std::uint64_t end)
    : job_(std::move(job)), begin_(begin), end_(std::min(end, job_->plan_.total())) {
  if (begin_ >= end_) return;
  job_->plan_.add_interest(begin_, end_);
  job_->start(false);
  job_->io_->slot.cancel();  // parked workers: there is work
}

fetch_job::interest::~interest() {
  if (begin_ < end_) job_->plan_.remove_interest(begin_, end_);
}

void fetch_job::stop() {
  // A graceful stop makes what the map says present durable, so that the next start trusts
  // the map without reading the bytes again (in-flight batches are not in it).
  stopped_synced_ = (state_ == job_state::fetching || state_ == job_state::idle) &&
                    unverified_.empty() && !published_ && fd_ >= 0 && ::fdatasync(fd_) == 0;
  fail(make_error_code(stream_errc::cancelled), "stopped");
  io_->tasks.cancel_all();  // workers waiting on upstream end now, not at their timeout
}

std::size_t fetch_job::tasks_running() const {
  return io_->tasks.size();
}

std::function<void(std::exception_ptr)> fetch_job::fail_on_exception(std::string what) {
  return [self = shared_from_this(), what = std::move(what)](std::exception_ptr e) {
    std::string why = "unknown exception";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      why = x.what();
    } catch (...) {
    }
    self->fail(make_error_code(stream_errc::upstream_failed), what + ": " + why);
  };
}

void fetch_job::fail(boost::system::error_code ec, std::string why) {
  if (state_ == job_state::verified || state_ == job_state::failed ||
      state_ == job_state::crc_mismatch)
    return;
  state_ = job_state::failed;
  error_ = ec;
  error_text_ = std::move(why);
  if (ec == stream_errc::cancelled)
    log_->info("fetch {}: stopped", source_.meta.filename);
  else
    log_->error("fetch {}: failed: {}", source_.meta.filename, error_text_);
  save_map();
  wake_readers();
  io_->slot.cancel();
  io_->done.cancel();
}

void fetch_job::wake_readers() {
  const bool over = state_ != job_state::fetching && state_ != job_state::idle;
  for (auto* w : io_->waiters)
    if (over || plan_.present().present_until(w->pos) >= w->until) w->timer.cancel();
}

void fetch_job::save_map() {
  if (files_.map.empty() || published_) return;
  const auto tmp = fs::path(files_.map).concat(".tmp");
  std::string text;
  if (unverified_.empty()) {
    text = fetch::serialize_saved_map(plan_.present(), stopped_synced_);
  } else {
    // Stopped while checking a resumed map: the runs not checked yet stay for next time.
    auto all = plan_.present();
    for (const auto& r : unverified_) all.insert(r.begin, r.end, r.crc);
    text = fetch::serialize_saved_map(all, false);
  }
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    out << text;
    if (!out) return;
  }
  std::error_code ec;
  fs::rename(tmp, files_.map, ec);
}

void fetch_job::reject(std::string why) {
  state_ = job_state::crc_mismatch;
  error_ = make_error_code(stream_errc::crc_mismatch);
  error_text_ = std::move(why);
  log_->error("fetch {}: {}: not published, dropped", source_.meta.filename, error_text_);
  std::error_code ec;
  fs::remove(files_.part, ec);
  if (!files_.map.empty()) fs::remove(files_.map, ec);
  finished();
}

void fetch_job::landed_complete() {
  if (publishing_) return;
  const auto crc = plan_.present().whole_crc().value_or(0);
  // Without BINARY_CRC the exact size and the final block's pad (checked as it landed) are
  // the verification, plus Content-MD5 in publish() when upstream sent one.
  if (source_.meta.crc32 && crc != *source_.meta.crc32) {
    char text[96];
    std::snprintf(text, sizeof text, "CRC-32 %08x, BINARY_CRC says %08x", crc, *source_.meta.crc32);
    reject(text);
    return;
  }
  if (published_) {
    state_ = job_state::verified;
    finished();
    return;
  }
  publishing_ = true;
  io_->tasks.spawn(publish(shared_from_this()), "publication", fail_on_exception("publishing"));
}

// Once the CRC matched: the data is made durable (fdatasync, on the landing pool: it may
// take seconds for a big build) before the rename makes it visible as verified, so that a
// power loss never leaves a torn file in builds/ (a scan adopts any file there of the exact
// size). Until then the job stays `fetching`: readers have every byte but the held last
// one (wait_done).
net::awaitable<void> fetch_job::publish(std::shared_ptr<fetch_job> self) {
  const int fd = self->fd_;
  int err = 0;
  if (!self->source_.meta.crc32 && !self->content_md5_.empty()) {
    const auto expected = crypto::parse_content_md5(self->content_md5_);
    const auto& meta = self->source_.meta;
    const auto key = self->source_.build.key;
    auto digest = [fd, key, total = meta.size, plain = meta.plain_size]() {
      return cipher_md5_on_disk(fd, key, total, plain);
    };
    std::optional<crypto::md5_digest> got;
    if (self->options_.land_on) {
      auto [ep, r] = co_await net::co_spawn(
          self->options_.land_on,
          [&]() -> net::awaitable<std::optional<crypto::md5_digest>> { co_return digest(); },
          on_pool());
      if (!ep) got = r;
    } else {
      got = digest();
    }
    if (self->state_ != job_state::fetching) co_return;
    if (expected && got != expected) {
      self->publishing_ = false;
      self->reject("MD5 of the file differs from upstream's Content-MD5 " + self->content_md5_);
      co_return;
    }
    self->verified_by_ = expected ? "Content-MD5" : "size+pad";
  }
  if (self->options_.land_on) {
    auto [ep, r] = co_await net::co_spawn(
        self->options_.land_on,
        [fd]() -> net::awaitable<int> { co_return ::fdatasync(fd) == 0 ? 0 : errno; }, on_pool());
    err = ep ? EIO : r;
  } else {
    err = ::fdatasync(fd) == 0 ? 0 : errno;
  }
  self->publish_synced(err);
}

void fetch_job::publish_synced(int sync_errno) {
  if (state_ != job_state::fetching) return;  // stopped meanwhile: the saved map resumes it
  std::error_code ec;
  if (sync_errno != 0) ec = std::error_code(sync_errno, std::generic_category());
  if (!ec && files_.before_publish) ec = files_.before_publish();
  if (!ec) fs::rename(files_.part, files_.final, ec);
  if (ec) {
    state_ = job_state::failed;
    error_ = make_error_code(stream_errc::disk);
    error_text_ = "publishing " + files_.final.string() + ": " + ec.message();
    log_->error("fetch {}: {}", source_.meta.filename, error_text_);
    save_map();
  } else {
    published_ = true;
    state_ = job_state::verified;
    if (!files_.map.empty()) fs::remove(files_.map, ec);
    if (source_.meta.crc32)
      log_->info("fetch {}: verified (CRC-32 {:08x}), {}", source_.meta.filename,
                 *source_.meta.crc32, files_.final.string());
    else
      log_->info("fetch {}: verified by {} (no BINARY_CRC), {}", source_.meta.filename,
                 verified_by_, files_.final.string());
    if (files_.after_publish) files_.after_publish();
  }
  finished();
}

void fetch_job::finished() {
  wake_readers();
  io_->slot.cancel();
  io_->done.cancel();
}

// --- readers --------------------------------------------------------------------------------

net::awaitable<boost::system::result<std::uint64_t>> fetch_job::wait_for(std::uint64_t pos,
                                                                         std::uint64_t until,
                                                                         bool sparse) {
  auto self = shared_from_this();  // the job outlives this wait
  if (pos >= plan_.total()) co_return make_error_code(stream_errc::upstream_failed);
  const std::uint64_t need = std::max(pos + 1, std::min(until, plan_.total()));
  for (;;) {
    if (state_ == job_state::failed || state_ == job_state::crc_mismatch) co_return error_;
    const auto present = plan_.present().present_until(pos);
    if (present >= need) co_return present;
    // A sparse wait declares its interest before start(): the workers start() spawns may
    // run at once (co_spawn dispatches on this thread), and a sparse job whose workers find
    // nothing declared goes idle again: start, idle, start... spun the service thread.
    if (sparse) plan_.add_interest(pos, need);
    start(!sparse);
    if (state_ != job_state::fetching) {  // start() may have settled it
      if (sparse) plan_.remove_interest(pos, need);
      continue;
    }

    waiter w{pos, need, net::steady_timer(executor_, steady::time_point::max())};
    io_->waiters.push_back(&w);
    plan_.want(pos);
    if (sparse) io_->slot.cancel();  // parked workers: there is work
    struct unregister {
      fetch_job* job;
      waiter* w;
      bool sparse;
      ~unregister() {
        job->io_->waiters.remove(w);
        job->plan_.unwant(w->pos);
        if (sparse) job->plan_.remove_interest(w->pos, w->until);
      }
    } guard{this, &w, sparse};
    co_await w.timer.async_wait(use_tuple);
    // The reader's wait was cancelled (its client went away, the server stops): stop
    // waiting; the job goes on for others.
    net::cancellation_state state = co_await net::this_coro::cancellation_state;
    if (state.cancelled() != net::cancellation_type::none)
      co_return make_error_code(net::error::operation_aborted);
  }
}

net::awaitable<boost::system::error_code> fetch_job::wait_done() {
  auto self = shared_from_this();
  start();
  while (state_ == job_state::fetching || state_ == job_state::idle) {
    co_await io_->done.async_wait(use_tuple);
    net::cancellation_state state = co_await net::this_coro::cancellation_state;
    if (state.cancelled() != net::cancellation_type::none)
      co_return make_error_code(net::error::operation_aborted);  // this waiter only
  }
  co_return state_ == job_state::verified ? boost::system::error_code{} : error_;
}

// --- followers and the window ---------------------------------------------------------------

fetch_job::follower::follower(std::shared_ptr<fetch_job> job, std::uint64_t pos, std::uint64_t end)
    : job_(std::move(job)),
      at_(job_->followers_.insert(pos)),
      end_(job_->follower_ends_.insert(end)) {}

fetch_job::follower::~follower() {
  job_->followers_.erase(at_);
  job_->follower_ends_.erase(end_);
  if (job_->parked_ > 0) job_->io_->slot.cancel();
}

void fetch_job::follower::move_to(std::uint64_t pos) {
  job_->followers_.erase(at_);
  at_ = job_->followers_.insert(pos);
  if (job_->parked_ > 0) job_->io_->slot.cancel();
}

std::uint64_t fetch_job::follow_window() const {
  return fetch::follow_window(governor_.target(), plan_.chunk_size(), options_.chunk_size_max);
}

std::uint64_t fetch_job::horizon() const {
  if (followers_.empty()) return UINT64_MAX;
  return std::min(*followers_.rbegin() + follow_window(), followers_end());
}

std::uint64_t fetch_job::followers_end() const {
  if (follower_ends_.empty()) return UINT64_MAX;
  // An end in the final two blocks is the file's (a download holds back its last byte
  // until the CRC matched; the last cipher block may be all pad): the job's own end game.
  const std::uint64_t end = *follower_ends_.rbegin();
  return end + 2 * crypto::aes_block >= plan_.total() ? UINT64_MAX : end;
}

// --- workers --------------------------------------------------------------------------------

net::awaitable<void> fetch_job::run_worker(std::shared_ptr<fetch_job> self, unsigned index) {
  try {
    co_await self->worker(index);
  } catch (const std::exception& e) {
    self->fail(make_error_code(stream_errc::upstream_failed),
               std::string("worker exception: ") + e.what());
  }
  --self->workers_running_;
  if (self->workers_running_ == 0 && self->state_ == job_state::fetching &&
      !self->plan_.present().complete()) {
    if (self->complete_) {
      self->fail(make_error_code(stream_errc::upstream_failed), "every worker stopped");
    } else {
      // A sparse job with nothing declared missing: idle until the next reader (its map is
      // saved, its file stays; a complete start or an interest starts it again).
      self->state_ = job_state::idle;
      self->save_map();
      self->log_->debug("fetch {}: sparse: {} bytes present, idle", self->source_.meta.filename,
                        self->plan_.present().present_bytes());
    }
  }
}

namespace {
// Answers no retry can change: the fetch fails at once with the reason (instead of a 403
// loop after a refused InitForMass, say).
bool fatal(const upstream::failure& f) {
  using upstream::errc;
  return f.is(errc::invalid_argument) || f.is(errc::wrong_key) || f.is(errc::init_refused) ||
         f.is(errc::not_hosted) || f.is(errc::served_other) || f.is(errc::imei_required) ||
         f.is(errc::bad_version) || f.is(errc::wrong_key_set);
}
bool wants_reauthorization(const upstream::failure& f) {
  return f.is(upstream::errc::auth) || f.http_status == 401 || f.http_status == 403;
}
}  // namespace

net::awaitable<void> fetch_job::worker(unsigned index) {
  worker_state w;
  w.id = index;
  workers_[index] = &w;
  struct unregister {
    fetch_job* job;
    unsigned index;
    ~unregister() { job->workers_[index] = nullptr; }
  } guard{this, index};
  const auto file = source_.build.file();
  while (state_ == job_state::fetching) {
    // The first GET authorises the file: the others start once it answered (or after
    // options_.stagger; supervise_tick).
    std::optional<fetch::byte_range> claim;
    if ((index == 0 || opened_once_) && (active_ < governor_.target() || !hedge_queue_.empty()))
      claim = next_work(w);
    if (!claim) {
      // Sparse: nothing declared is missing and no connection is busy: the workers end (the
      // job goes idle) instead of holding the job open.
      if (!complete_ && active_ == 0 && hedge_queue_.empty() && !plan_.has_work()) {
        io_->slot.cancel();
        break;
      }
      ++parked_;  // no slot, or nothing to fetch now: wait for a change
      co_await io_->slot.async_wait(use_tuple);
      --parked_;
      continue;
    }
    if (w.buffer.empty()) {  // on first use: most of the ceiling's workers may never run
      w.buffer.resize(std::max<std::size_t>(options_.buffer_size, 4096) + crypto::aes_block);
      w.decryptor.emplace(source_.build.key);
    }
    ++active_;
    w.cut = false;
    auto r = co_await fetch_claim(*claim, w);
    --active_;
    plan_.release(w.id);  // whatever it did not land (its helper's now, if hedged)
    io_->slot.cancel();   // a parked worker may take the freed slot
    if (state_ != job_state::fetching) break;
    if (r || w.cut) continue;
    const auto& f = r.error();
    if (fatal(f)) {
      fail(make_error_code(stream_errc::upstream_failed), f.message());
      break;
    }
    if (f.is(upstream::errc::rate_limited) || f.is(upstream::errc::unreachable)) {
      const auto before = governor_.target();
      governor_.shed(active_, steady::now());
      if (governor_.target() < before)
        log_->warn("fetch {}: upstream refuses connections ({}): down to {}", source_.meta.filename,
                   f.message(), governor_.target());
    }
    auto delay = retry_.on_failure(w.streak, w.progressed, f.retry_after);
    w.progressed = false;
    if (delay && options_.metrics) options_.metrics->retries.inc();
    if (!delay) {
      fail(make_error_code(stream_errc::upstream_failed), "giving up after " +
                                                              std::to_string(retry_.failures()) +
                                                              " failures; last: " + f.message());
      break;
    }
    log_->warn("fetch {}: worker {}: {} (range {}-{}); retry in {} ms", source_.meta.filename,
               index, f.message(), claim->begin, claim->end, delay->count());
    if (delay->count() > 0) {
      net::steady_timer t(executor_, *delay);
      co_await t.async_wait(use_tuple);
    }
    if (wants_reauthorization(f) && state_ == job_state::fetching) {
      if (options_.metrics) options_.metrics->retries.inc();  // a 401: nonce + InitForMass again
      auto a = co_await io_->session.reauthorize(file, w.seen_generation);
      if (!a && fatal(a.error()) && state_ == job_state::fetching) {
        fail(make_error_code(stream_errc::upstream_failed), a.error().message());
        break;
      }
      if (!a)
        log_->warn("fetch {}: re-authorisation failed: {}", source_.meta.filename,
                   a.error().message());
    }
  }
}

std::optional<fetch::byte_range> fetch_job::next_work(worker_state& w) {
  const auto now = steady::now();
  // A slow connection waiting for a helper comes first (it may hold one connection above
  // the target: the victim's goes once the helper wins).
  while (!hedge_queue_.empty()) {
    const auto victim = hedge_queue_.front();
    hedge_queue_.erase(hedge_queue_.begin());
    if (auto r = plan_.hedge(w.id, victim)) {
      ++hedges_;
      if (auto* m = options_.metrics) m->hedges.inc();
      log_->info(
          "fetch {}: connection {} is slow ({:.0f} B/s, idle {} ms): connection {} "
          "fetches {}-{} too",
          source_.meta.filename, victim, rates_.rate(victim, now),
          std::chrono::duration_cast<std::chrono::milliseconds>(rates_.idle(victim, now)).count(),
          w.id, r->begin, r->end);
      return r;
    }
  }
  if (active_ >= governor_.target()) return std::nullopt;
  const auto limit = horizon();
  // A connection added later (the count grew, a worker after a failure) starts where the
  // others are: the job's rate estimates exist already.
  const auto previous = w.last_claim ? w.last_claim : largest_claim_ / 4;
  auto size = fetch::claim_size(options_.chunk_size, options_.chunk_size_max, previous);
  if (!followers_.empty())  // claims that fit the follow window twice over
    size = std::min(
        size, fetch::follow_claim_max(follow_window(), governor_.target(), plan_.chunk_size()));
  if (auto c = plan_.claim(w.id, limit, size, followers_end())) {
    w.last_claim = size;
    largest_claim_ = std::max(largest_claim_, size);
    return c;
  }
  // The end game: nothing left to claim; take the back of the claim that ends last (of the
  // claims split_candidates allows), if worth a GET (split_worth).
  const auto worth =
      fetch::split_worth(plan_.chunk_size(), rates_.typical_rate(now), rates_.first_byte_latency());
  if (auto s = fetch::pick_split(plan_.split_candidates(followers_end()), rates_, now,
                                 worth.min_bytes, worth.min_time)) {
    if (auto r = plan_.split(w.id, s->victim, s->at)) {
      ++splits_;
      if (auto* m = options_.metrics) m->splits.inc();
      log_->debug("fetch {}: end game: connection {} takes {}-{} from connection {}",
                  source_.meta.filename, w.id, r->begin, r->end, s->victim);
      return r;
    }
  }
  return std::nullopt;
}

void fetch_job::cut(fetch::worker_id id) {
  if (id >= workers_.size() || !workers_[id]) return;
  auto& w = *workers_[id];
  if (w.cut) return;
  w.cut = true;
  ++cuts_;
  plan_.release(id);
  if (w.in_read) w.cut_signal.emit(net::cancellation_type::terminal);
}

net::awaitable<void> fetch_job::supervise(std::shared_ptr<fetch_job> self) {
  net::steady_timer t(self->executor_);
  struct done_guard {
    fetch_job* job;
    ~done_guard() { job->supervising_ = false; }
  } guard{self.get()};
  while (self->state_ == job_state::fetching) {
    t.expires_after(std::chrono::milliseconds(100));
    auto [ec] = co_await t.async_wait(use_tuple);
    if (ec || self->state_ != job_state::fetching) break;  // cancelled: the job stops
    self->supervise_tick();
  }
}

void fetch_job::supervise_tick() {
  const auto now = steady::now();
  if (!opened_once_ && now - started_ >= options_.stagger) {
    opened_once_ = true;
    io_->slot.cancel();
  }
  // The connection count: more while more helps (every allowed connection busy, work left,
  // and not held at the total cap).
  const double rate = recent_.rate(now);
  const bool capped = options_.max_bps > 0 && rate >= 0.9 * static_cast<double>(options_.max_bps);
  const bool saturated = active_ >= governor_.target() && plan_.has_work(horizon()) && !capped;
  const auto before = governor_.target();
  governor_.tick(now, rate, saturated);
  if (governor_.target() != before) {
    log_->debug("fetch {}: {} -> {} connections ({:.1f} MB/s)", source_.meta.filename, before,
                governor_.target(), rate / 1e6);
    io_->slot.cancel();
  }
  // Slow connections: hedge the claims of slow holders; cut helpers that stall themselves.
  std::vector<fetch::worker_id> holders;
  for (const auto& [id, r] : plan_.claims()) holders.push_back(id);
  for (fetch::worker_id id = 0; id < workers_.size(); ++id)
    if (plan_.victim_of(id)) holders.push_back(id);
  bool queued = false;
  for (const auto& v : fetch::find_slow(rates_, holders, now)) {
    if (plan_.victim_of(v.w)) {
      if (v.stalled) cut(v.w);  // a stalled helper: the victim may be hedged again
      continue;
    }
    if (plan_.helper_of(v.w)) continue;
    if (std::find(hedge_queue_.begin(), hedge_queue_.end(), v.w) != hedge_queue_.end()) continue;
    auto h = plan_.holding(v.w);
    // A tiny rest is not worth a connection unless it stalled.
    if (!h || (!v.stalled && h->size() < (64u << 10))) continue;
    if (hedge_queue_.size() >= 2) break;
    hedge_queue_.push_back(v.w);
    queued = true;
  }
  // Helpers left with nothing (their victim finished first) and workers whose claim is gone.
  for (fetch::worker_id id = 0; id < workers_.size(); ++id)
    if (workers_[id] && workers_[id]->in_read && !plan_.holding(id)) cut(id);
  if (queued || (active_ < governor_.target() && parked_ > 0)) io_->slot.cancel();
}

net::awaitable<upstream::result<void>> fetch_job::fetch_claim(fetch::byte_range claim,
                                                              worker_state& w) {
  const auto started = steady::now();
  w.first_byte = false;
  auto r = co_await fetch_claim_bytes(claim, w, started);
  if (auto* m = options_.metrics) {
    // A claim cut short by the job's end (stopped, failed elsewhere) counts as ok: upstream
    // answered; the outcome is upstream's, the job's own failures are in fusproxy_fetch_*.
    const std::string_view outcome = r ? std::string_view("ok") : outcome_label(r.error());
    m->requests("download", outcome).inc();
    m->latency("download").observe(std::chrono::duration<double>(steady::now() - started).count());
  }
  co_return r;
}

net::awaitable<upstream::result<void>> fetch_job::fetch_claim_bytes(fetch::byte_range claim,
                                                                    worker_state& w,
                                                                    steady::time_point started) {
  const auto file = source_.build.file();
  w.seen_generation = io_->session.auth_generation();
  ++gets_;
  rates_.opened(w.id, started);
  struct closed_guard {
    fetch_job* job;
    fetch::worker_id id;
    ~closed_guard() { job->rates_.closed(id, steady::now()); }
  } closed{this, w.id};
  auto reader = co_await io_->session.open_range(file, claim);
  if (!opened_once_) {
    opened_once_ = true;
    io_->slot.cancel();
  }
  if (!reader) co_return reader.error();
  if (content_md5_.empty()) content_md5_ = std::string(reader->header("Content-MD5"));
  std::uint64_t pos = claim.begin;  // the next cipher byte of the GET to land (16-aligned)
  std::size_t held = 0;             // received bytes not landed yet
  steady::time_point held_since{};  // when the first whole block of them arrived
  constexpr auto max_hold = std::chrono::milliseconds(20);
  auto& buf = w.buffer;
  while (pos + held < claim.end || held > 0) {
    if (state_ != job_state::fetching || w.cut) co_return upstream::result<void>{};
    // Narrowed (end game) or beaten (hedge): stop at what is still this worker's.
    const auto mine = plan_.holding(w.id);
    if (!mine || pos >= mine->end) co_return upstream::result<void>{};
    std::size_t n = 0;
    if (pos + held < claim.end) {
      // The read may be cut (fetch_job::cut): the cancellation closes the connection.
      w.in_read = true;
      auto [ep, got] = co_await net::co_spawn(
          executor_, reader->read_some({buf.data() + held, buf.size() - held}),
          net::bind_cancellation_slot(w.cut_signal.slot(), use_tuple));
      w.in_read = false;
      if (w.cut || state_ != job_state::fetching) co_return upstream::result<void>{};
      if (ep) std::rethrow_exception(ep);
      if (!got) co_return got.error();  // resume from the last whole block that landed
      n = *got;
      ++w.reads;
      if (n == 0) co_return upstream::make_failure(upstream::errc::dropped, "range ended early");
      w.progressed = true;
      const auto now = steady::now();
      meter_.add(n, now);
      recent_.add(n, now);
      rates_.received(w.id, n, now);
      if (auto* m = options_.metrics) {
        m->bytes.inc(n);
        if (!w.first_byte)
          m->time_to_first_byte("download")
              .observe(std::chrono::duration<double>(now - started).count());
      }
      w.first_byte = true;
    }
    if (held < crypto::aes_block && held + n >= crypto::aes_block) held_since = steady::now();
    held += n;
    // Land in batches (a full buffer, the claim's end, or bytes held for max_hold): fewer
    // writes, CRC merges and reader wake-ups than one per socket read, without keeping a
    // slow connection's bytes from readers (or from the saved map) for long.
    const bool batch = held + crypto::aes_block > buf.size() || pos + held >= claim.end ||
                       (held >= crypto::aes_block && steady::now() - held_since >= max_hold);
    const std::size_t whole = batch ? held - held % crypto::aes_block : 0;
    if (whole > 0) {
      // Only what is still this worker's lands: bytes another connection landed first are
      // skipped, bytes past a narrowed end are not its own; no byte is written twice.
      const auto r = plan_.reserve(w.id, {pos, pos + whole});
      if (r.cut) {
        log_->info("fetch {}: connection {} beat connection {} at {}: cut it",
                   source_.meta.filename, w.id, *r.cut, r.land.begin);
        cut(*r.cut);
      }
      if (!r.land.empty()) {
        const auto skip = static_cast<std::size_t>(r.land.begin - pos);
        if (auto ec = co_await land(r.land.begin, {buf.data() + skip, r.land.size()}, w)) {
          plan_.unreserve(w.id, r.land);
          fail(ec, std::string("landing bytes at ") + std::to_string(r.land.begin) + ": " +
                       ec.message());
          co_return upstream::result<void>{};
        }
      } else if (auto h = plan_.holding(w.id); !h || h->begin < pos + whole) {
        co_return upstream::result<void>{};  // nothing of it is this worker's any more
      }
      pos += whole;
      std::memmove(buf.data(), buf.data() + whole, held - whole);
      held -= whole;
    } else if (n == 0) {
      break;  // cannot happen: at the claim's end everything held lands
    }
    if (n > 0) {
      if (auto pause = bucket_.take(n, steady::now()); pause > steady::duration::zero()) {
        net::steady_timer t(executor_, pause);
        co_await t.async_wait(use_tuple);
      }
    }
  }
  if (pos != claim.end)
    co_return upstream::make_failure(upstream::errc::dropped, "range ended inside a block");
  log_->debug("fetch {}: range {}-{} in {} reads", source_.meta.filename, claim.begin, claim.end,
              w.reads);
  w.reads = 0;
  co_return upstream::result<void>{};
}

namespace {
struct landed_batch {
  boost::system::error_code ec;
  std::uint32_t crc = 0;
};

// The per-byte half of landing, free of job state (it may run on a pool thread): CRC-32 of
// the cipher, decrypt in place, check the final block's pad, pwrite the plain bytes.
landed_batch decrypt_and_write(int fd, crypto::block_decryptor& dec, std::uint64_t at,
                               std::span<std::uint8_t> cipher, std::uint64_t total,
                               std::uint64_t plain_size, std::atomic<std::uint64_t>* budget) {
  crypto::crc32 crc;
  crc.update(cipher);
  if (auto ec = dec.decrypt(cipher, cipher)) return {ec};
  std::size_t plain_len = cipher.size();
  if (at + cipher.size() == total) {
    // The final block: its pad must be exactly what makes plain_size.
    const std::span<const std::uint8_t, crypto::aes_block> last(
        cipher.data() + cipher.size() - crypto::aes_block, crypto::aes_block);
    auto pad = crypto::pkcs7_pad_length(last);
    if (!pad || total - *pad != plain_size) return {make_error_code(stream_errc::bad_padding)};
    plain_len -= *pad;
  }
  if (plain_len > 0 && !write_all(fd, cipher.data(), plain_len, at, budget))
    return {make_error_code(errno == ENOSPC ? stream_errc::no_space : stream_errc::disk)};
  return {{}, crc.value()};
}
}  // namespace

net::awaitable<boost::system::error_code> fetch_job::land(std::uint64_t at,
                                                          std::span<std::uint8_t> cipher,
                                                          worker_state& w) {
  const std::uint64_t total = plan_.total();
  const std::uint64_t plain_size = source_.meta.plain_size;
  const int fd = fd_;
  auto& dec = *w.decryptor;
  auto* budget = options_.test_write_budget.get();
  landed_batch batch;
  if (options_.land_on) {
    // The worker waits (its buffer is busy) while the others keep receiving on this thread.
    auto [ep, r] = co_await net::co_spawn(
        options_.land_on,
        [fd, &dec, at, cipher, total, plain_size, budget]() -> net::awaitable<landed_batch> {
          co_return decrypt_and_write(fd, dec, at, cipher, total, plain_size, budget);
        },
        on_pool());
    batch = ep ? landed_batch{make_error_code(stream_errc::disk)} : r;
  } else {
    batch = decrypt_and_write(fd, dec, at, cipher, total, plain_size, budget);
  }
  if (batch.ec) co_return batch.ec;
  if (state_ != job_state::fetching) {
    plan_.unreserve(w.id, {at, at + cipher.size()});  // the job ended meanwhile
    co_return boost::system::error_code{};
  }
  co_return commit_landing(w.id, at, at + cipher.size(), batch.crc);
}

// The state half of landing, on the job's executor: mark present, save the map, wake readers.
boost::system::error_code fetch_job::commit_landing(fetch::worker_id id, std::uint64_t at,
                                                    std::uint64_t end, std::uint32_t crc) {
  const auto chunk = plan_.chunk_size();
  const bool crosses_chunk = at / chunk != (end - 1) / chunk || end % chunk == 0;
  if (!plan_.landed(id, at, end, crc)) return make_error_code(stream_errc::disk);
  // The map is saved at chunk ends and at least every 100 ms of landing: a process killed
  // mid-fetch loses at most that much (plus what each worker holds unlanded).
  const auto now = steady::now();
  if (plan_.present().complete()) {
    landed_complete();
  } else if (crosses_chunk || now - last_save_ >= std::chrono::milliseconds(100)) {
    save_map();
    last_save_ = now;
  }
  wake_readers();
  return {};
}

}  // namespace fusproxy::server
