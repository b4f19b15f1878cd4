#pragma once
// fus-sim as a library: a faithful, fast stand-in for Samsung's FUS (both dialects),
// SmartHistory, FOTA version.xml and the download CDN, on one loopback port. `fus-sim` and
// `fusproxy --demo` both start it. No Asio/Beast here: the server lives behind a pimpl.
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "sim/catalogue.hpp"

namespace boost::asio {
class io_context;
}

namespace fusproxy::sim {

struct simulator_options {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 0;            // 0: pick a free port (see simulator::port())
  std::optional<sim::catalogue> catalogue;  // empty: catalogue::builtin()
  std::uint64_t throttle_bps = 0;           // per-connection download rate in bytes/s; 0: none
  std::string faults;                       // fault SPEC armed at start (docs/sim.md)
  std::string legacy_keys = "2026";         // "2020", "2023", "2026" or "KEY1:KEY2"
  bool require_imei = false;                // legacy: Status 408 without a valid DEVICE_IMEI_PUSH
  // Strict session conduct is the default (docs/sim.md): InitForMass only for a file that
  // BinaryInform answered in the same session, SmartHistory only with a live smart2 session
  // cookie, FOTA only for the User-Agents working clients send. `lenient` turns these off.
  bool lenient = false;
  bool allow_remote = false;  // permit a non-loopback listen address
  // Send Content-MD5 (of the whole encrypted file) on downloads. It costs one full pass
  // over the build the first time, so it is off by default. "base64" or "hex".
  std::string content_md5;  // "" (off), "base64" or "hex"
};

// Thrown by the constructor when the simulator cannot start (bad options, bind failure).
struct start_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class simulator {
 public:
  // Binds, listens and starts accepting on `ioc` (which the caller runs, on any number of
  // threads). Throws start_error. Destroy the simulator before `ioc`.
  simulator(boost::asio::io_context& ioc, simulator_options options);
  ~simulator();  // stop()s; safe while the io_context still runs
  simulator(const simulator&) = delete;
  simulator& operator=(const simulator&) = delete;

  std::uint16_t port() const;
  // "http://127.0.0.1:PORT/": the base for --fus-url, --cloud-url and --fota-url alike.
  std::string base_url() const;

  // Stops accepting and closes every open connection; thread-safe, idempotent.
  void stop();

  // Run-time control; the same as the /_sim/ routes. The error text names the bad item.
  std::optional<std::string> arm_faults(std::string_view spec);
  void clear_faults();
  void set_throttle(std::uint64_t bytes_per_second);
  std::string stats_json() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

// Whether `host` (an IP literal or "localhost") is a loopback address.
bool is_loopback_host(std::string_view host);

}  // namespace fusproxy::sim
