#pragma once
// One fetch job per build: it fills a sparse file of the build's PLAIN bytes from
// --connections ranged upstream GETs sharing one authorised fus_session, and any number of
// readers follow it (wait_for) as ranges land. The job owns the file, the present map
// (fetch_plan.hpp) and the session; readers only read.
//
//   worker: claim a cipher range (readers' wanted bytes first) -> open_range -> read_some
//           -> CRC-32 of the cipher -> decrypt whole blocks (the final one: check and strip
//           the pad) -> pwrite plain -> mark present -> wake readers waiting there
//   failure: give the rest of the claim back, back off (retry_policy), 401 -> reauthorize,
//           429/503 -> Retry-After and fewer connections (connection_governor)
//   complete: combined CRC == BINARY_CRC -> fdatasync -> rename <part> to <final>, verified;
//           otherwise crc_mismatch: the file is dropped, readers are failed
//
// Threading: the job's state lives on the executor the job was made with (one thread; no
// locks). Only the per-byte work of landing a batch (CRC-32, decrypt, pwrite into the job's
// file, on the worker's own buffer and decryptor) may run elsewhere (fetch_options::land_on).
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "fetch/fetch_plan.hpp"
#include "firmware/model/firmware_types.hpp"
#include "upstream/fus_client.hpp"

namespace spdlog {
class logger;
}

namespace fusproxy::server {

struct upstream_metrics;

// The stream module's errors (what a reader or the CLI gets when a job fails).
enum class stream_errc {
  upstream_failed = 1,  // retries exhausted or a fatal upstream answer (detail in the job)
  crc_mismatch,         // the fetched file's CRC-32 differs from BINARY_CRC
  bad_padding,          // the final block's pad disagrees with the plain size / key
  disk,                 // creating, writing or renaming the cache file failed
  no_space,             // the cache's file system is full (ENOSPC) or the cache limit is hit
  cancelled,            // the job was stopped (shutdown)
};
const boost::system::error_category& stream_category() noexcept;
boost::system::error_code make_error_code(stream_errc e) noexcept;

// What a job needs to fetch a build: its metadata and how to download it.
struct build_source {
  firmware_metadata meta;
  upstream::build_info build;
};

struct fetch_options {
  unsigned connections = 16;                  // the ceiling of the adaptive connection count
  unsigned connections_start = 8;             // where the count starts (at most `connections`)
  std::uint64_t chunk_size = 2u << 20;        // the first claims of each connection
  std::uint64_t chunk_size_max = 128u << 20;  // claims grow up to this
  std::uint64_t max_bps = 0;                  // all workers of the job together; 0: no cap
  fetch::retry_settings retry;
  // The other workers start once the first GET answered (it authorised the file), or
  // after this long.
  std::chrono::milliseconds stagger{1000};
  std::size_t buffer_size = 1024u << 10;  // per worker; also how much lands at once
  // Where the per-byte half of landing runs (CRC-32, decrypt, pwrite): a thread pool lets
  // it use other cores than the one serving sockets. Empty: inline on the job's executor.
  // The job's state (present map, readers) stays on the job's executor either way.
  boost::asio::any_io_executor land_on;
  // Where ranges, bytes, latency and retries are recorded; optional (tests, `fusproxy get`).
  upstream_metrics* metrics = nullptr;
  // Tests only (--test-disk-full-after): bytes the jobs sharing this budget may still write
  // before their writes fail with ENOSPC, as a full disk would. Null: no such limit.
  std::shared_ptr<std::atomic<std::uint64_t>> test_write_budget;
};

// Where the job keeps the build: it writes `part` and renames it to `final` once verified.
// `map` (optional) is where the present map is saved after each chunk (resume, `get -c`).
struct job_files {
  std::filesystem::path part;
  std::filesystem::path final;
  std::filesystem::path map;  // empty: not saved
  // Called once the CRC matched, before `part` is renamed to `final` (the build cache writes
  // the metadata beside it there); an error fails the job (disk) and keeps the part.
  std::function<std::error_code()> before_publish;
  // Called once the file is at `final`.
  std::function<void()> after_publish;
};

enum class job_state { idle, fetching, verified, failed, crc_mismatch };
std::string_view to_string(job_state s);

// One upstream connection of a job now.
struct connection_progress {
  unsigned worker = 0;
  double rate = 0;                   // bytes/s, last second
  std::uint64_t begin = 0, end = 0;  // the range it is to land (its claim; a helper's victim's)
  bool helper = false;               // hedging another connection's claim
};

struct job_progress {
  job_state state = job_state::idle;
  std::uint64_t total = 0;    // cipher bytes
  std::uint64_t present = 0;  // cipher bytes on disk
  double rate = 0;            // upstream bytes/s, last few seconds
  unsigned connections = 0;   // workers holding a connection now
  unsigned target = 0;        // what the governor allows
  unsigned ceiling = 0;       // --connections
  std::vector<connection_progress> per_connection;
  std::uint64_t gets = 0;    // ranged GETs sent
  std::uint64_t hedges = 0;  // slow connections hedged
  std::uint64_t cuts = 0;    // connections cut (lost a hedge, or idle helpers)
  std::uint64_t splits = 0;  // claims split in the end game
  std::uint64_t retries = 0;
  std::uint64_t sheds = 0;  // 429/503 answers
  std::uint32_t crc = 0;    // combined, once complete
  std::string error;        // when failed
  std::size_t readers = 0;  // waiting now
};

class fetch_job : public std::enable_shared_from_this<fetch_job> {
 public:
  // Opens (or creates) the part file. An existing `final` of exactly plain_size bytes is
  // adopted as verified (it is only ever renamed there after its CRC matched); an existing
  // `part` with a valid `map` resumes from it (a map not saved by a graceful stop has its
  // runs checked against the disk when the job starts); anything else starts from nothing.
  // `sparse`: the file is not reserved (posix_fallocate) until a complete start: a job
  // opened for a tar entry of a 20 GB build takes the disk its fetched bytes need.
  static boost::system::result<std::shared_ptr<fetch_job>> open(
      boost::asio::any_io_executor executor, upstream::fus_client& client, build_source source,
      fetch_options options, job_files files, std::shared_ptr<spdlog::logger> log,
      bool sparse = false);
  // Like open(), but trusts the first `plain_prefix` bytes already in `part` (rounded down
  // to 16): their cipher CRC is recomputed by re-encrypting them (`fusproxy get -c`).
  static boost::system::result<std::shared_ptr<fetch_job>> open_with_prefix(
      boost::asio::any_io_executor executor, upstream::fus_client& client, build_source source,
      fetch_options options, job_files files, std::shared_ptr<spdlog::logger> log,
      std::uint64_t plain_prefix, bool sparse = false);
  ~fetch_job();

  // Starts the workers unless running or done. Idempotent. `complete` (the default: full
  // downloads, --mirror, wait_done) fetches the whole build; otherwise (sparse, issue 14)
  // the job fetches only what interests and sparse waits declare, and goes back to idle
  // when nothing declared is missing. A complete start turns a sparse job complete (it
  // then reserves the file's blocks, as open() does for a complete one).
  void start(bool complete = true);
  bool complete_mode() const { return complete_; }
  // A range of plain bytes a reader will need soon (a tar header, an entry, the compressed
  // blocks ahead of an LZ4 decoder): fetched by the job's connections in parallel, lowest
  // first, without starting a complete fetch. RAII: the declaration ends with the object.
  class interest {
   public:
    interest(std::shared_ptr<fetch_job> job, std::uint64_t begin, std::uint64_t end);
    ~interest();
    interest(const interest&) = delete;
    interest& operator=(const interest&) = delete;

   private:
    std::shared_ptr<fetch_job> job_;
    std::uint64_t begin_, end_;
  };
  // Waits until cipher bytes [pos, max(pos + 1, min(until, total))) are present (starting
  // the fetch if needed) and returns the end of the present run from pos, or the job's
  // error. pos < total(). Readers ask for a batch (e.g. 256 KiB) so that a client following
  // the fetch gets large writes rather than one per landed piece.
  // `sparse`: a reader of a part of the build (a tar entry): the wait declares [pos, until)
  // as an interest and starts the job sparse (see start()).
  boost::asio::awaitable<boost::system::result<std::uint64_t>> wait_for(std::uint64_t pos,
                                                                        std::uint64_t until = 0,
                                                                        bool sparse = false);
  // A client stream following the job. While any is attached, workers claim bytes only up
  // to a window past the furthest follower (fetch::follow_window, claims no larger than
  // fetch::follow_claim_max): the one thread then serves the clients instead of racing
  // ahead to disk (a loopback upstream is faster than the disk). With none attached the job
  // fetches at full speed, claims growing to chunk_size_max (a mirror completes the build
  // whoever is reading).
  class follower {
   public:
    // Reading from pos up to `end` (the end of the client's range; the job does not claim
    // past the furthest end while clients follow it).
    follower(std::shared_ptr<fetch_job> job, std::uint64_t pos, std::uint64_t end = UINT64_MAX);
    ~follower();
    follower(const follower&) = delete;
    follower& operator=(const follower&) = delete;
    void move_to(std::uint64_t pos);

   private:
    std::shared_ptr<fetch_job> job_;
    std::multiset<std::uint64_t>::iterator at_, end_;
  };

  // Waits until the job is verified (success) or failed (its error).
  boost::asio::awaitable<boost::system::error_code> wait_done();
  // Stops the workers; waiting readers get `cancelled`.
  void stop();
  // The job's tasks (workers, supervisor, checks) not finished yet: after stop(), a caller
  // about to destroy the executor waits for 0 (they unwind on it).
  std::size_t tasks_running() const;

  const build_source& source() const { return source_; }
  // Whether plain bytes [begin, end) are on disk now.
  bool has(std::uint64_t begin, std::uint64_t end) const {
    return plan_.present().contains(begin, end);
  }
  int fd() const { return fd_; }
  // Plain bytes on disk now, and whether the file's blocks are reserved (a complete job):
  // what the cache counts for a partial build (sparse: the present bytes).
  std::uint64_t present_bytes() const { return plan_.present().present_bytes(); }
  bool reserved() const { return reserved_; }
  std::uint64_t total() const { return plan_.total(); }  // cipher size
  std::uint64_t plain_size() const { return source_.meta.plain_size; }
  job_state state() const { return state_; }
  // The job's error once failed (the reason in progress().error).
  boost::system::error_code error() const { return error_; }
  job_progress progress() const;
  const std::filesystem::path& file_path() const;  // part or final, whichever holds it now

  struct worker_state;

 private:
  fetch_job(boost::asio::any_io_executor executor, upstream::fus_client& client,
            build_source source, fetch_options options, job_files files,
            std::shared_ptr<spdlog::logger> log, fetch::present_map present);
  static boost::asio::awaitable<void> run_worker(std::shared_ptr<fetch_job> self, unsigned index);
  boost::asio::awaitable<void> worker(unsigned index);
  boost::asio::awaitable<upstream::result<void>> fetch_claim(fetch::byte_range claim,
                                                             worker_state& w);
  boost::asio::awaitable<upstream::result<void>> fetch_claim_bytes(
      fetch::byte_range claim, worker_state& w, std::chrono::steady_clock::time_point started);
  boost::asio::awaitable<boost::system::error_code> land(std::uint64_t at,
                                                         std::span<std::uint8_t> cipher,
                                                         worker_state& w);
  boost::system::error_code commit_landing(fetch::worker_id id, std::uint64_t at, std::uint64_t end,
                                           std::uint32_t crc);
  // The next range for a free worker: a queued hedge, a claim, or (end game) a split.
  std::optional<fetch::byte_range> next_work(worker_state& w);
  // Closes a worker's connection now (it lost a hedge, or holds nothing any more).
  void cut(fetch::worker_id id);
  // Every 100 ms while fetching: the connection count, slow connections, stalled helpers.
  static boost::asio::awaitable<void> supervise(std::shared_ptr<fetch_job> self);
  void supervise_tick();
  void begin_fetch();
  static boost::asio::awaitable<void> check_resumed(std::shared_ptr<fetch_job> self);
  void landed_complete();
  // Not published, file dropped: the bytes differ from what upstream said (CRC-32, MD5).
  void reject(std::string why);
  static boost::asio::awaitable<void> publish(std::shared_ptr<fetch_job> self);
  void publish_synced(int sync_errno);
  void finished();  // wakes readers, parked workers and wait_done()
  void fail(boost::system::error_code ec, std::string why);
  // For the job's tasks: an escaping exception fails the job (logged with `what`).
  std::function<void(std::exception_ptr)> fail_on_exception(std::string what);
  void wake_readers();
  void save_map();
  std::uint64_t horizon() const;
  std::uint64_t follow_window() const;
  // The furthest end of the followers' ranges (UINT64_MAX: none follow).
  std::uint64_t followers_end() const;

  struct impl;
  std::unique_ptr<impl> io_;  // timers, session, files: Asio stays in the .cpp

  boost::asio::any_io_executor executor_;
  upstream::fus_client& client_;
  build_source source_;
  fetch_options options_;
  job_files files_;
  std::shared_ptr<spdlog::logger> log_;
  fetch::fetch_plan plan_;
  fetch::retry_policy retry_;
  fetch::connection_governor governor_;
  fetch::token_bucket bucket_;
  fetch::rate_meter meter_;
  int fd_ = -1;
  job_state state_ = job_state::idle;
  boost::system::error_code error_;
  std::string error_text_;
  bool published_ = false;   // the file lives at files_.final
  bool publishing_ = false;  // the CRC matched; syncing the data before the rename
  // Content-MD5 of the first range answer that had one (the whole encrypted file's MD5):
  // checked before publishing when BinaryInform gave no BINARY_CRC.
  std::string content_md5_;
  std::string verified_by_ = "size+pad";  // without BINARY_CRC: what the publish checked
  // Runs of a map saved while fetching (not after a graceful stop): checked against the disk
  // before they count as present (check_resumed).
  struct resumed_run {
    std::uint64_t begin, end;
    std::uint32_t crc;
  };
  std::vector<resumed_run> unverified_;
  bool stopped_synced_ = false;  // stop() synced the part: the saved map is marked synced
  bool complete_ = false;        // a complete start happened: fetch the whole build
  bool reserved_ = true;         // the file's blocks are allocated (posix_fallocate)
  bool supervising_ = false;     // the supervisor task runs
  unsigned workers_running_ = 0;
  unsigned active_ = 0;  // workers holding a claim / connection
  unsigned parked_ = 0;  // workers waiting for the window to move
  fetch::connection_rates rates_;
  fetch::rate_meter recent_{std::chrono::seconds(1)};  // the governor's aggregate rate
  std::vector<worker_state*> workers_;                 // by worker id, while running
  std::vector<fetch::worker_id> hedge_queue_;          // slow connections awaiting a helper
  bool opened_once_ = false;  // a GET answered: the other workers may start
  std::chrono::steady_clock::time_point started_{};
  std::uint64_t gets_ = 0, hedges_ = 0, cuts_ = 0, splits_ = 0;
  std::uint64_t largest_claim_ = 0;  // the largest claim size asked so far
  std::multiset<std::uint64_t> followers_, follower_ends_;
  std::uint64_t chunks_since_save_ = 0;
  std::chrono::steady_clock::time_point last_save_{};
};

}  // namespace fusproxy::server

template <>
struct boost::system::is_error_code_enum<fusproxy::server::stream_errc> : std::true_type {};
