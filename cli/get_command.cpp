// `fusproxy get` and `fusproxy versions`: the service's pipeline as one-shot commands. `get`
// resolves a build, then runs one fetch job (parallel ranged upstream, decrypted as it
// lands, CRC-32 checked) writing OUTPUT.part, renamed to OUTPUT once verified.
#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "config/settings.hpp"
#include "fetch/fetch_job.hpp"
#include "fetch/file_io.hpp"
#include "firmware/download_manager.hpp"
#include "firmware/resolver_mapping.hpp"
#include "firmware/upstream_config.hpp"
#include "http/json_views.hpp"
#include "protocol/ascii.hpp"
#include "sim/simulator.hpp"

namespace fusproxy::cli {
namespace {

namespace net = boost::asio;
namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

// Exit codes (documented in the usage texts).
enum exit_code : int {
  ok = 0,
  failure = 1,       // anything else (output exists, unexpected)
  usage = 2,         // bad arguments or settings
  not_found = 3,     // unknown model/region/version, or not hosted
  upstream = 4,      // upstream unreachable, refused, garbage, retries exhausted
  crc = 5,           // the file's CRC-32 differs from BINARY_CRC: not kept as complete
  disk = 6,          // the output could not be written
  interrupted = 130  // SIGINT/SIGTERM: resume with -c
};

constexpr const char* get_usage =
    "usage: fusproxy get MODEL REGION [VERSION] [-o FILE] [-c] [-q] [--json] [--connections N]\n"
    "                    [--file MEMBER/PATH] [upstream flags]\n"
    "\n"
    "Downloads a firmware build and writes the decrypted zip. VERSION is `latest` (default),\n"
    "the PDA part alone, or the 4-part version ('/' or '_' separated).\n"
    "      --file M/PATH   only one file inside a tar member of the build (issue 14): M is AP,\n"
    "                      BL, CP, CSC, HOME_CSC or a member's full name; PATH an entry of\n"
    "                      its tar, or NAME for the LZ4-decoded NAME.lz4 (AP/boot.img). Only\n"
    "                      the blocks the tar headers and that file need are fetched (a\n"
    "                      scratch FILE.fetch/ holds them; removed at the end). Default FILE:\n"
    "                      the entry's base name; -c does not apply\n"
    "  -o, --output FILE   where to write (default: the plain file name, in this directory);\n"
    "                      bytes land in FILE.part (+ FILE.part.map), renamed to FILE once\n"
    "                      its CRC-32 matched BINARY_CRC\n"
    "  -c, --continue      resume: FILE.part with its map fetches only what is missing; a\n"
    "                      partial FILE from another tool is trusted up to its size rounded\n"
    "                      down to 16 bytes (its CRC is recomputed from those bytes, so a\n"
    "                      wrong prefix makes the final check fail, never a silent success)\n"
    "  -q, --quiet         no progress bar (it is drawn on stderr only when it is a terminal)\n"
    "      --json          once verified, print the build's metadata and the run's figures\n"
    "                      (file, resumed_bytes, fetched_bytes, seconds) as JSON on stdout\n"
    "  upstream flags      as `fusproxy serve`: --dialect, --fus-url, --cloud-url, --fota-url,\n"
    "                      --legacy-keys, --imei, --ca-file, --tls-verify, --upstream-timeout,\n"
    "                      --connections, --chunk-size, --upstream-max-bps, --retry-base-ms,\n"
    "                      --retry-attempts, --log-level, --demo (built-in simulator); also\n"
    "                      FUSPROXY_* environment variables and --config FILE\n"
    "Exit status: 0 done, 1 other failure (e.g. FILE exists without -c), 2 usage,\n"
    "3 not found / not hosted, 4 upstream failure, 5 CRC-32 mismatch, 6 disk, 130\n"
    "interrupted (FILE.part is kept: run again with -c).\n";

constexpr const char* versions_usage =
    "usage: fusproxy versions MODEL REGION [--json] [upstream flags]\n"
    "\n"
    "Lists the firmware versions upstream knows for a model/region, newest first\n"
    "(SmartHistory merged with FOTA), and the latest stable one.\n"
    "Exit status: 0, 2 usage, 3 not found, 4 upstream failure.\n";

struct parsed_args {
  std::vector<std::string> positional;
  std::vector<std::string> settings_args;  // handed to config::parse
  std::string output;
  std::string file;  // --file MEMBER/PATH
  bool resume = false;
  bool quiet = false;
  bool json = false;
  bool help = false;
};

// Own flags are taken out; every other `--flag VALUE` / `--flag=VALUE` goes to the shared
// settings parser (flags without a value: --demo, --tls-verify).
std::optional<parsed_args> split_args(int argc, char** argv, std::string& error) {
  parsed_args a;
  for (int i = 1; i < argc; ++i) {
    const std::string t = argv[i];
    if (t == "-h" || t == "--help") {
      a.help = true;
    } else if (t == "-c" || t == "--continue") {
      a.resume = true;
    } else if (t == "-q" || t == "--quiet") {
      a.quiet = true;
    } else if (t == "--json") {
      a.json = true;
    } else if (t == "-o" || t == "--output") {
      if (i + 1 >= argc) {
        error = t + " needs a file name";
        return std::nullopt;
      }
      a.output = argv[++i];
    } else if (t.rfind("--output=", 0) == 0) {
      a.output = t.substr(9);
    } else if (t == "--file") {
      if (i + 1 >= argc) {
        error = t + " needs MEMBER/PATH (e.g. AP/boot.img)";
        return std::nullopt;
      }
      a.file = argv[++i];
    } else if (t.rfind("--file=", 0) == 0) {
      a.file = t.substr(7);
    } else if (t.rfind("--", 0) == 0) {
      a.settings_args.push_back(t);
      const bool valueless =
          t.find('=') != std::string::npos || t == "--demo" || t == "--tls-verify";
      if (!valueless) {
        if (i + 1 >= argc) {
          error = t + " needs a value";
          return std::nullopt;
        }
        a.settings_args.push_back(argv[++i]);
      }
    } else if (t.size() > 1 && t[0] == '-') {
      error = "unknown option " + t;
      return std::nullopt;
    } else {
      a.positional.push_back(t);
    }
  }
  return a;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return text;
}

std::string upper(std::string_view s) {
  return protocol::ascii::to_upper(s);
}

int exit_for(const server::service_error& e) {
  switch (e.kind) {
    case server::firmware_errc::not_found:
    case server::firmware_errc::not_hosted:
      return not_found;
    default:
      return upstream;
  }
}

int exit_for(const boost::system::error_code& ec) {
  if (ec == server::stream_errc::crc_mismatch) return crc;
  if (ec == server::stream_errc::disk) return disk;
  if (ec == server::stream_errc::cancelled) return interrupted;
  return upstream;
}

// Shared set-up of both commands: settings, logger, io_context, optional demo simulator.
struct context {
  config::settings settings;
  std::shared_ptr<spdlog::logger> log;
  net::io_context ioc{1};
  std::optional<sim::simulator> demo;
  // --fetch-threads: where the job lands fetched bytes (CRC, decrypt, write); after ioc so
  // that it is joined first.
  std::optional<net::thread_pool> landing;
};

// Returns an exit code on failure.
std::optional<int> set_up(context& c, const parsed_args& a, const char* cmd) {
  try {
    c.settings = config::parse(a.settings_args).values;
  } catch (const config::config_error& e) {
    std::fprintf(stderr, "fusproxy %s: %s\n", cmd, e.what());
    return usage;
  }
  // Quiet by default: warnings (retries, refusals) and errors only, on stderr.
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  c.log = std::make_shared<spdlog::logger>(cmd, sink);
  c.log->set_pattern("fusproxy %n: %l: %v");
  const bool level_given =
      std::any_of(a.settings_args.begin(), a.settings_args.end(),
                  [](const std::string& s) { return s.rfind("--log-level", 0) == 0; });
  c.log->set_level(level_given ? spdlog::level::from_str(c.settings.log_level)
                               : spdlog::level::warn);
  if (c.settings.demo) {
    sim::simulator_options o;
    o.listen_host = "127.0.0.1";
    o.listen_port = 0;
    o.legacy_keys = c.settings.legacy_keys;
    try {
      c.demo.emplace(c.ioc, o);
    } catch (const sim::start_error& e) {
      std::fprintf(stderr, "fusproxy %s: --demo: %s\n", cmd, e.what());
      return failure;
    }
    c.settings.fus_url = c.settings.cloud_url = c.settings.fota_url = c.demo->base_url();
  }
  return std::nullopt;
}

class progress_bar {
 public:
  explicit progress_bar(bool enabled) : enabled_(enabled), started_(steady::now()) {}

  void draw(const server::job_progress& p, std::uint64_t resumed_from) {
    if (!enabled_ || p.total == 0) return;
    const double frac = static_cast<double>(p.present) / static_cast<double>(p.total);
    const int width = 24;
    const int filled = static_cast<int>(frac * width);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    const double elapsed = std::chrono::duration<double>(steady::now() - started_).count();
    const double rate =
        p.rate > 0 ? p.rate
                   : (elapsed > 0 ? static_cast<double>(p.present - resumed_from) / elapsed : 0);
    std::string eta = "--:--";
    if (rate > 1 && p.present < p.total) {
      const auto secs = static_cast<std::uint64_t>(static_cast<double>(p.total - p.present) / rate);
      char t[32];
      std::snprintf(t, sizeof t, "%llu:%02llu:%02llu", static_cast<unsigned long long>(secs / 3600),
                    static_cast<unsigned long long>(secs / 60 % 60),
                    static_cast<unsigned long long>(secs % 60));
      eta = t;
    }
    std::fprintf(stderr, "\r[%s] %5.1f%%  %s / %s  %s/s  ETA %s  (%u conn)   ", bar.c_str(),
                 100 * frac, human_bytes(static_cast<double>(p.present)).c_str(),
                 human_bytes(static_cast<double>(p.total)).c_str(), human_bytes(rate).c_str(),
                 eta.c_str(), p.connections);
    std::fflush(stderr);
    drawn_ = true;
  }
  void finish() {
    if (drawn_) std::fputs("\n", stderr);
    drawn_ = false;
  }

 private:
  bool enabled_;
  bool drawn_ = false;
  steady::time_point started_;
};

// Redraws the progress bar every 200 ms (`progress()` says where the download is) until
// cancelled. It runs beside the download's wait (operator ||), which cancels it and waits
// for its end: no ticking coroutine is left detached when the flow returns and the
// io_context is stopped (one that read the flow's locals by reference would read them
// after the flow's frame is gone).
template <class Progress>
net::awaitable<void> tick_progress(progress_bar& bar, Progress progress,
                                   std::uint64_t resumed_from) {
  net::steady_timer tick(co_await net::this_coro::executor);
  for (;;) {
    bar.draw(progress(), resumed_from);
    tick.expires_after(std::chrono::milliseconds(200));
    auto [ec] = co_await tick.async_wait(net::as_tuple(net::use_awaitable));
    if (ec) co_return;  // cancelled: the download is over
  }
}

// Waits (5 s at most) until the tasks a stopped job or manager still runs have unwound on
// this thread, so that none is left for the io_context's destruction (the flow's owner
// stops the io_context once the flow returns).
net::awaitable<void> join_tasks(const std::function<std::size_t()>& tasks_running) {
  net::steady_timer tick(co_await net::this_coro::executor);
  for (int i = 0; i < 500 && tasks_running() > 0; ++i) {
    tick.expires_after(std::chrono::milliseconds(10));
    co_await tick.async_wait(net::as_tuple(net::use_awaitable));
  }
}

// Writes a body to a file (--file), counting what it wrote for the progress bar.
class file_sink final : public server::body_sink {
 public:
  file_sink(int fd, std::uint64_t size) : fd_(fd), size_(size) {}
  net::awaitable<boost::system::error_code> write(std::span<const std::byte> bytes) override {
    if (const auto ec = server::pwrite_full(fd_, bytes, written_))
      co_return boost::system::error_code(ec.value(), boost::system::system_category());
    written_ += bytes.size();
    co_return boost::system::error_code{};
  }
  net::awaitable<boost::system::error_code> write_file(int fd, std::uint64_t offset,
                                                       std::uint64_t length) override {
    std::vector<std::byte> buf(std::min<std::uint64_t>(length, 1u << 20));
    while (length > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), length));
      if (server::pread_full(fd, {buf.data(), n}, offset))
        co_return make_error_code(boost::system::errc::io_error);
      if (auto ec = co_await write({buf.data(), n})) co_return ec;
      offset += n;
      length -= n;
    }
    co_return boost::system::error_code{};
  }
  std::uint64_t remaining() const override { return size_ - std::min(size_, written_); }
  std::uint64_t written() const { return written_; }

 private:
  int fd_;
  std::uint64_t size_;
  std::uint64_t written_ = 0;
};

// `get --file MEMBER/PATH`: the service's download manager on a scratch cache (sparse: the
// build's file holds only the blocks fetched), one entry written to OUTPUT.part, renamed.
net::awaitable<int> get_file_flow(context& c, const parsed_args& a, upstream::fus_client& client,
                                  const server::build_source& source) {
  const auto& s = c.settings;
  const auto slash = a.file.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == a.file.size()) {
    std::fprintf(stderr, "fusproxy get: --file takes MEMBER/PATH (e.g. AP/boot.img)\n");
    co_return usage;
  }
  const auto base = a.file.substr(a.file.find_last_of('/') + 1);
  const fs::path out = a.output.empty() ? fs::path(base) : fs::path(a.output);
  std::error_code ec;
  if (fs::exists(out, ec)) {
    std::fprintf(stderr, "fusproxy get: %s exists (remove it first)\n", out.c_str());
    co_return failure;
  }
  server::download_settings ds;
  ds.cache_dir = fs::path(out).concat(".fetch");
  ds.fetch = server::fetch_options_from(s);
  ds.fetch_threads = s.fetch_threads;
  struct scratch {
    fs::path dir;
    ~scratch() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } cleanup{ds.cache_dir};
  auto mgr = std::make_unique<server::download_manager>(c.ioc.get_executor(), client, ds, c.log);
  auto rep = co_await mgr->entry_representation(source, a.file.substr(0, slash),
                                                a.file.substr(slash + 1), {});
  if (!rep) {
    std::fprintf(stderr, "fusproxy get: %s: %s\n", a.file.c_str(), rep.error().message.c_str());
    mgr->stop_all();
    co_await join_tasks([&] { return mgr->tasks_running(); });
    co_return exit_for(rep.error());
  }
  const auto part = fs::path(out).concat(".part");
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "fusproxy get: %s: %s\n", part.c_str(), std::strerror(errno));
    co_return disk;
  }
  std::fprintf(stderr, "fusproxy get: %s/%s %s\n  %s -> %s (%s)\n", source.meta.model.c_str(),
               source.meta.region.c_str(), source.meta.version.c_str(), a.file.c_str(), out.c_str(),
               human_bytes(static_cast<double>(rep->size)).c_str());
  file_sink sink(fd, rep->size);
  progress_bar bar(!a.quiet && ::isatty(STDERR_FILENO));
  net::steady_timer tick(c.ioc);
  const auto started = steady::now();
  auto progress = [&] {
    server::job_progress p;
    p.total = rep->size_known ? rep->size : 0;  // unknown: no bar
    p.present = sink.written();
    return p;
  };
  using namespace net::experimental::awaitable_operators;
  // The ticks end with the write (|| cancels the other side and joins it).
  const auto written = co_await (
      rep->body->write_range(0, rep->size_known ? rep->size : server::unknown_length, sink) ||
      tick_progress(bar, progress, 0));
  const auto result =
      written.index() == 0 ? std::get<0>(written) : make_error_code(server::stream_errc::cancelled);
  bar.finish();
  mgr->stop_all();
  co_await join_tasks([&] { return mgr->tasks_running(); });
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (result || (rep->size_known && sink.remaining() > 0) || !synced) {
    std::fprintf(stderr, "fusproxy get: %s: failed after %llu of %llu bytes: %s\n", a.file.c_str(),
                 static_cast<unsigned long long>(sink.written()),
                 static_cast<unsigned long long>(rep->size),
                 result ? result.message().c_str() : "short or unsynced output");
    fs::remove(part, ec);
    co_return result ? exit_for(result) : disk;
  }
  fs::rename(part, out, ec);
  if (ec) {
    std::fprintf(stderr, "fusproxy get: %s: %s\n", out.c_str(), ec.message().c_str());
    co_return disk;
  }
  const double secs = std::chrono::duration<double>(steady::now() - started).count();
  std::fprintf(stderr, "fusproxy get: %s written (%s in %.1f s)\n", out.c_str(),
               human_bytes(static_cast<double>(sink.written())).c_str(), secs);
  if (a.json) {
    boost::json::object doc{{"file", fs::absolute(out, ec).string()},
                            {"entry", a.file},
                            {"size", sink.written()},
                            {"etag", rep->etag},
                            {"version", source.meta.version},
                            {"seconds", secs}};
    std::printf("%s\n", boost::json::serialize(doc).c_str());
  }
  co_return ok;
}

net::awaitable<int> get_flow(context& c, const parsed_args& a) {
  const auto& s = c.settings;
  const std::string model = upper(a.positional[0]);
  const std::string region = upper(a.positional[1]);
  const std::string version = a.positional.size() > 2 ? a.positional[2] : "latest";
  upstream::fus_client client(c.ioc.get_executor(), server::fus_config_from(s),
                              server::http_options_from(s));
  upstream::fus_session session(client);
  auto build = co_await session.resolve(model, region, version);
  if (!build) {
    const auto e = server::to_service_error(build.error());
    std::fprintf(stderr, "fusproxy get: %s/%s/%s: %s\n", model.c_str(), region.c_str(),
                 version.c_str(), e.message.c_str());
    co_return exit_for(e);
  }
  auto plain = co_await session.plain_size(*build);
  if (!plain) {
    const auto e = server::to_service_error(plain.error());
    std::fprintf(stderr, "fusproxy get: %s: %s\n", build->inform.binary_name.c_str(),
                 e.message.c_str());
    co_return exit_for(e);
  }
  server::build_source source{server::make_metadata(*build, *plain), *build};
  if (!a.file.empty()) co_return co_await get_file_flow(c, a, client, source);
  const auto& meta = source.meta;
  const fs::path out = a.output.empty() ? fs::path(meta.plain_filename) : fs::path(a.output);
  server::job_files files;
  files.part = fs::path(out).concat(".part");
  files.final = out;
  files.map = fs::path(out).concat(".part.map");

  std::error_code ec;
  std::uint64_t prefix = 0;
  if (fs::exists(out, ec)) {
    if (!a.resume) {
      std::fprintf(stderr, "fusproxy get: %s exists (use -c to resume it, or remove it)\n",
                   out.c_str());
      co_return failure;
    }
    // A partial (or complete) file from an earlier run or another tool: its prefix.
    prefix = fs::file_size(out, ec);
    if (prefix > meta.plain_size) {
      std::fprintf(stderr, "fusproxy get: %s is larger than the build (%llu bytes)\n", out.c_str(),
                   static_cast<unsigned long long>(meta.plain_size));
      co_return failure;
    }
    fs::remove(files.map, ec);
    fs::rename(out, files.part, ec);
    if (ec) {
      std::fprintf(stderr, "fusproxy get: %s: %s\n", out.c_str(), ec.message().c_str());
      co_return disk;
    }
  } else if (!a.resume) {
    fs::remove(files.part, ec);
    fs::remove(files.map, ec);
  }

  std::fprintf(stderr, "fusproxy get: %s/%s %s\n  %s -> %s (%s)\n", model.c_str(), region.c_str(),
               meta.version.c_str(), meta.filename.c_str(), out.c_str(),
               human_bytes(static_cast<double>(meta.plain_size)).c_str());
  auto options = server::fetch_options_from(s);
  if (s.fetch_threads > 0) {
    c.landing.emplace(s.fetch_threads);
    options.land_on = c.landing->get_executor();
  }
  auto opened = server::fetch_job::open_with_prefix(c.ioc.get_executor(), client, source, options,
                                                    files, c.log, prefix);
  if (!opened) {
    std::fprintf(stderr, "fusproxy get: %s: %s\n", files.part.c_str(),
                 opened.error().message().c_str());
    co_return disk;
  }
  auto job = *opened;
  const auto resumed_from = job->progress().present;
  if (resumed_from > 0)
    std::fprintf(stderr, "  resuming: %s already present\n",
                 human_bytes(static_cast<double>(resumed_from)).c_str());

  net::signal_set signals(c.ioc, SIGINT, SIGTERM);
  signals.async_wait([job](const boost::system::error_code& e, int) {
    if (!e) job->stop();
  });
  progress_bar bar(!a.quiet && ::isatty(STDERR_FILENO));
  const auto started = steady::now();
  using namespace net::experimental::awaitable_operators;
  // The ticks end with the wait (|| cancels the other side and joins it).
  const auto done =
      co_await (job->wait_done() || tick_progress(
                                        bar, [&job] { return job->progress(); }, resumed_from));
  const auto result =
      done.index() == 0 ? std::get<0>(done) : make_error_code(server::stream_errc::cancelled);
  signals.cancel();
  bar.draw(job->progress(), resumed_from);
  bar.finish();
  // The job is done (verified, failed or interrupted); hedges and the supervisor may still
  // be running: stop them (SIGINT stopped it already: a second stop() would no longer count
  // the map as synced) and let them unwind before the flow returns.
  if (result != server::stream_errc::cancelled) job->stop();
  co_await join_tasks([&] { return job->tasks_running(); });
  if (result) {
    const auto p = job->progress();
    if (result == server::stream_errc::cancelled)
      std::fprintf(stderr, "fusproxy get: interrupted; %s kept, run again with -c to resume\n",
                   files.part.c_str());
    else
      std::fprintf(stderr, "fusproxy get: failed: %s%s%s\n", result.message().c_str(),
                   p.error.empty() ? "" : ": ", p.error.c_str());
    co_return exit_for(result);
  }
  const double secs = std::chrono::duration<double>(steady::now() - started).count();
  const auto fetched = meta.size - resumed_from;
  // The CRC-32 is optional (upstream may give none): an optional passed to printf's %x
  // was undefined behaviour.
  char crc[32] = "";
  if (meta.crc32) std::snprintf(crc, sizeof crc, " (CRC-32 %08x)", *meta.crc32);
  std::fprintf(stderr, "fusproxy get: %s verified%s, %s in %.1f s (%s/s)\n", out.c_str(), crc,
               human_bytes(static_cast<double>(fetched)).c_str(), secs,
               human_bytes(secs > 0 ? static_cast<double>(fetched) / secs : 0).c_str());
  if (a.json) {
    // The build's metadata (as GET …/{version} answers it) and what this run did.
    auto doc = boost::json::parse(server::metadata_json(meta)).as_object();
    doc["file"] = fs::absolute(out, ec).string();
    doc["resumed_bytes"] = resumed_from;
    doc["fetched_bytes"] = fetched;
    doc["seconds"] = secs;
    doc["verified"] = true;
    std::printf("%s\n", boost::json::serialize(doc).c_str());
  }
  co_return ok;
}

net::awaitable<int> versions_flow(context& c, const parsed_args& a) {
  const std::string model = upper(a.positional[0]);
  const std::string region = upper(a.positional[1]);
  upstream::fus_client client(c.ioc.get_executor(), server::fus_config_from(c.settings),
                              server::http_options_from(c.settings));
  upstream::fus_session session(client);
  auto list = co_await session.versions(model, region);
  if (!list) {
    const auto e = server::to_service_error(list.error());
    std::fprintf(stderr, "fusproxy versions: %s/%s: %s\n", model.c_str(), region.c_str(),
                 e.message.c_str());
    co_return exit_for(e);
  }
  if (a.json) {
    // The same document as GET /firmware/{model}/{region}, built by Boost.JSON.
    server::version_list out;
    out.model = model;
    out.region = region;
    out.latest = list->latest;
    for (const auto& v : list->versions) out.versions.push_back({v.version, v.os, v.beta});
    std::printf("%s\n", server::versions_json(out).c_str());
  } else {
    std::printf("%s/%s latest: %s\n", model.c_str(), region.c_str(),
                list->latest.empty() ? "(none)" : list->latest.c_str());
    for (const auto& v : list->versions)
      std::printf("%s  %s%s\n", v.version.c_str(), v.os.c_str(), v.beta ? "  beta" : "");
  }
  co_return ok;
}

template <class Flow>
int run_flow(context& c, Flow flow, const char* cmd) {
  int code = failure;
  net::co_spawn(c.ioc, flow(), [&](std::exception_ptr e, int r) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::fprintf(stderr, "fusproxy %s: %s\n", cmd, x.what());
      }
      code = failure;
    } else {
      code = r;
    }
    if (c.demo) c.demo->stop();
    c.ioc.stop();
  });
  c.ioc.run();
  return code;
}

}  // namespace

int run_get(int argc, char** argv) {
  std::string error;
  auto a = split_args(argc, argv, error);
  if (!a) {
    std::fprintf(stderr, "fusproxy get: %s\n\n%s", error.c_str(), get_usage);
    return usage;
  }
  if (a->help) {
    std::fputs(get_usage, stdout);
    return ok;
  }
  if (a->positional.size() < 2 || a->positional.size() > 3) {
    std::fprintf(stderr, "fusproxy get: MODEL and REGION are needed\n\n%s", get_usage);
    return usage;
  }
  context c;
  if (auto code = set_up(c, *a, "get")) return *code;
  try {
    return run_flow(
        c, [&] { return get_flow(c, *a); }, "get");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fusproxy get: %s\n", e.what());
    return usage;
  }
}

int run_versions(int argc, char** argv) {
  std::string error;
  auto a = split_args(argc, argv, error);
  if (!a) {
    std::fprintf(stderr, "fusproxy versions: %s\n\n%s", error.c_str(), versions_usage);
    return usage;
  }
  if (a->help) {
    std::fputs(versions_usage, stdout);
    return ok;
  }
  if (a->positional.size() != 2) {
    std::fprintf(stderr, "fusproxy versions: MODEL and REGION are needed\n\n%s", versions_usage);
    return usage;
  }
  context c;
  if (auto code = set_up(c, *a, "versions")) return *code;
  try {
    return run_flow(
        c, [&] { return versions_flow(c, *a); }, "versions");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fusproxy versions: %s\n", e.what());
    return usage;
  }
}

}  // namespace fusproxy::cli
