// `fusproxy decrypt`: decrypts an ENC2/ENC4 (AES-128-ECB, PKCS#7) firmware file, streaming
// with fixed buffers so memory stays bounded whatever the file size.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.hpp"
#include "crypto/ecb.hpp"
#include "crypto/keys.hpp"

namespace fusproxy::cli {
namespace {

constexpr std::size_t buffer_size = std::size_t{1} << 20;

constexpr const char* usage =
    "usage: fusproxy decrypt (--key HEX | --enc2 REGION:MODEL:VERSION |\n"
    "                         --enc4 VERSION:LOGIC_VALUE) IN OUT\n"
    "\n"
    "Decrypts a Samsung firmware file (AES-128-ECB, PKCS#7) from IN to OUT.\n"
    "  --key HEX                   the 16-byte key as 32 hex digits\n"
    "  --enc2 REGION:MODEL:VERSION key = MD5(REGION:MODEL:VERSION), for .enc2 files\n"
    "  --enc4 VERSION:LOGIC_VALUE  key = MD5(LOGIC_CHECK(VERSION, LOGIC_VALUE)), for .enc4;\n"
    "                              VERSION is the served 4-part version, '/' or '_' separated\n"
    "  IN, OUT                     file paths; '-' is stdin / stdout\n"
    "A progress bar is drawn on stderr when it is a terminal. On any error the exit status\n"
    "is non-zero and a partly written OUT file is removed; with OUT '-' the data already\n"
    "written cannot be taken back, so check the exit status.\n";

// Set by SIGINT/SIGTERM so an interrupted run still removes its partial output. A signal
// handler can only reach static storage, hence this one file-local flag.
volatile sig_atomic_t interrupted = 0;
void on_signal(int) {
  interrupted = 1;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "fusproxy decrypt: %s\n", message.c_str());
  return 1;
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "fusproxy decrypt: %s\n\n%s", message.c_str(), usage);
  return 2;
}

struct options {
  std::optional<crypto::aes_key> key;
  std::string input;
  std::string output;
};

// Parses the key option; returns an error message or "".
std::string parse_key(std::string_view name, std::string_view value, options& opts) {
  if (opts.key) return "give exactly one of --key, --enc2, --enc4";
  if (name == "--key") {
    auto key = crypto::key_from_hex(value);
    if (!key) return "--key wants 32 hex digits (16 bytes), got '" + std::string(value) + "'";
    opts.key = *key;
  } else if (name == "--enc2") {
    // The version itself holds '/' but no ':', so split on the first two colons.
    const auto first = value.find(':');
    const auto second = first == std::string_view::npos ? first : value.find(':', first + 1);
    if (second == std::string_view::npos || first == 0 || second == first + 1 ||
        second + 1 == value.size())
      return "--enc2 wants REGION:MODEL:VERSION, got '" + std::string(value) + "'";
    opts.key = crypto::enc2_key(value.substr(0, first), value.substr(first + 1, second - first - 1),
                                value.substr(second + 1));
  } else {
    const auto colon = value.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == value.size())
      return "--enc4 wants VERSION:LOGIC_VALUE, got '" + std::string(value) + "'";
    std::string version(value.substr(0, colon));
    std::replace(version.begin(), version.end(), '_', '/');
    auto key = crypto::enc4_key(version, value.substr(colon + 1));
    if (!key)
      return "--enc4: the version '" + version + "' is too short (" + key.error().message() + ")";
    opts.key = *key;
  }
  return {};
}

// Draws "  123.4 MB / 456.7 MB  27%  812.3 MB/s" on stderr, at most ten times a second.
class progress_bar {
 public:
  progress_bar(bool enabled, std::optional<std::uint64_t> total)
      : enabled_(enabled), total_(total), start_(clock::now()), last_draw_(start_) {}

  void update(std::uint64_t done, bool force = false) {
    if (!enabled_) return;
    const auto now = clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / 1e6 / seconds : 0;
    if (total_ && *total_ > 0) {
      const double fraction =
          std::min(1.0, static_cast<double>(done) / static_cast<double>(*total_));
      constexpr int width = 30;
      const int filled = static_cast<int>(fraction * width);
      std::fprintf(stderr, "\r[%.*s%*s] %8.1f / %.1f MB %3d%% %7.1f MB/s", filled,
                   "##############################", width - filled, "",
                   static_cast<double>(done) / 1e6, static_cast<double>(*total_) / 1e6,
                   static_cast<int>(fraction * 100), rate);
    } else {
      std::fprintf(stderr, "\r%8.1f MB %7.1f MB/s", static_cast<double>(done) / 1e6, rate);
    }
  }
  void end(std::uint64_t done, bool success) {
    if (!enabled_) return;
    if (success) update(done, true);
    std::fputc('\n', stderr);
  }

 private:
  using clock = std::chrono::steady_clock;
  bool enabled_;
  std::optional<std::uint64_t> total_;
  clock::time_point start_;
  clock::time_point last_draw_;
};

// Reads up to size bytes, retrying short reads so full buffers reach the decryptor.
// Returns the count (0 at end of input) or -1 with errno set.
ssize_t read_full(int fd, std::uint8_t* data, std::size_t size) {
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::read(fd, data + got, size - got);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR && !interrupted) continue;
      return -1;
    }
    got += static_cast<std::size_t>(n);
  }
  return static_cast<ssize_t>(got);
}

bool write_full(int fd, const std::uint8_t* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR && !interrupted) continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Owns the output: on failure a regular file this run created or truncated is removed,
// so a wrong key or a cut input never leaves a silently wrong file behind.
class output_file {
 public:
  ~output_file() {
    if (fd_ >= 0 && fd_ != STDOUT_FILENO) ::close(fd_);
    if (!committed_ && remove_on_failure_) ::unlink(path_.c_str());
  }
  std::string open(const std::string& path, const struct stat* input_stat) {
    path_ = path;
    if (path == "-") {
      fd_ = STDOUT_FILENO;
      return {};
    }
    struct stat existing;
    if (input_stat && ::stat(path.c_str(), &existing) == 0 &&
        existing.st_dev == input_stat->st_dev && existing.st_ino == input_stat->st_ino)
      return "OUT is the same file as IN";
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return "cannot open output '" + path + "': " + std::strerror(errno);
    struct stat st;
    remove_on_failure_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
    return {};
  }
  int fd() const { return fd_; }
  std::string commit() {
    if (fd_ != STDOUT_FILENO && ::close(std::exchange(fd_, -1)) != 0)
      return "cannot write output '" + path_ + "': " + std::strerror(errno);
    committed_ = true;
    return {};
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool remove_on_failure_ = false;
  bool committed_ = false;
};

std::string describe(std::string_view path) {
  if (path == "-") return "stdin";
  std::string quoted = "'";
  quoted.append(path).append("'");
  return quoted;
}

int decrypt_file(const options& opts) {
  struct sigaction action {};
  action.sa_handler = on_signal;  // no SA_RESTART: a blocked read returns so we can clean up
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a closed stdout shows up as EPIPE from write instead

  int in_fd = STDIN_FILENO;
  if (opts.input != "-") {
    in_fd = ::open(opts.input.c_str(), O_RDONLY | O_CLOEXEC);
    if (in_fd < 0)
      return fail("cannot open input " + describe(opts.input) + ": " + std::strerror(errno));
  }
  std::unique_ptr<int, void (*)(int*)> close_input(&in_fd, [](int* fd) {
    if (*fd != STDIN_FILENO) ::close(*fd);
  });
  struct stat in_stat {};
  const bool have_stat = ::fstat(in_fd, &in_stat) == 0;
  if (have_stat && S_ISDIR(in_stat.st_mode))
    return fail("cannot read input " + describe(opts.input) + ": it is a directory");
  std::optional<std::uint64_t> total;
  if (have_stat && S_ISREG(in_stat.st_mode)) {
    total = static_cast<std::uint64_t>(in_stat.st_size);
    // A regular file's size tells at once what the end of the stream would (no output made).
    if (*total == 0) return fail("input " + describe(opts.input) + " is empty");
    if (*total % crypto::aes_block != 0)
      return fail("input " + describe(opts.input) + " is " + std::to_string(*total) +
                  " bytes, not a multiple of 16: truncated, or not an encrypted firmware file");
    ::posix_fadvise(in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }

  output_file out;
  if (auto error =
          out.open(opts.output, have_stat && S_ISREG(in_stat.st_mode) ? &in_stat : nullptr);
      !error.empty())
    return fail(error);

  std::vector<std::uint8_t> in_buffer(buffer_size);
  std::vector<std::uint8_t> out_buffer(buffer_size + crypto::aes_block);
  crypto::stream_decryptor decryptor(*opts.key);
  progress_bar progress(::isatty(STDERR_FILENO) == 1, total);
  std::uint64_t read_bytes = 0;

  auto write_error = [&] {
    progress.end(read_bytes, false);
    return fail("cannot write output " +
                (opts.output == "-" ? std::string("stdout") : "'" + opts.output + "'") + ": " +
                std::strerror(errno));
  };

  for (;;) {
    const ssize_t n = read_full(in_fd, in_buffer.data(), in_buffer.size());
    if (interrupted) {
      progress.end(read_bytes, false);
      return fail("interrupted");
    }
    if (n < 0) {
      progress.end(read_bytes, false);
      return fail("cannot read input " + describe(opts.input) + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    read_bytes += static_cast<std::uint64_t>(n);
    auto plain = decryptor.update({in_buffer.data(), static_cast<std::size_t>(n)}, out_buffer);
    if (!plain) {
      progress.end(read_bytes, false);
      return fail("decryption failed: " + plain.error().message());
    }
    if (!write_full(out.fd(), out_buffer.data(), *plain)) return write_error();
    progress.update(read_bytes);
  }

  auto last = decryptor.finish(out_buffer);
  progress.end(read_bytes, last.has_value());
  if (!last) {
    if (last.error() == crypto::errc::bad_padding)
      return fail("bad PKCS#7 padding in the last block: wrong key? (" + describe(opts.input) +
                  ", " + std::to_string(read_bytes) + " bytes)");
    if (read_bytes == 0) return fail("input " + describe(opts.input) + " is empty");
    return fail("input " + describe(opts.input) + " is " + std::to_string(read_bytes) +
                " bytes, not a multiple of 16: truncated, or not an encrypted firmware file");
  }
  if (!write_full(out.fd(), out_buffer.data(), *last)) return write_error();
  if (auto error = out.commit(); !error.empty()) return fail(error);
  return 0;
}

}  // namespace

int run_decrypt(int argc, char** argv) {
  options opts;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (arg.starts_with("--") && arg.size() > 2) {
      std::string_view name = arg;
      std::string_view value;
      if (const auto eq = arg.find('='); eq != std::string_view::npos) {
        name = arg.substr(0, eq);
        value = arg.substr(eq + 1);
      } else if (name == "--key" || name == "--enc2" || name == "--enc4") {
        if (i + 1 >= argc) return usage_error(std::string(name) + " needs a value");
        value = argv[++i];
      }
      if (name != "--key" && name != "--enc2" && name != "--enc4")
        return usage_error("unknown option " + std::string(arg));
      if (auto error = parse_key(name, value, opts); !error.empty()) return usage_error(error);
      continue;
    }
    positional.emplace_back(arg);
  }
  if (!opts.key) return usage_error("give one of --key, --enc2, --enc4");
  if (positional.size() != 2) return usage_error("give IN and OUT (use '-' for stdin/stdout)");
  opts.input = positional[0];
  opts.output = positional[1];
  return decrypt_file(opts);
}

}  // namespace fusproxy::cli
