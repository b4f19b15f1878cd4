// fus-sim: a faithful, fast stand-in for Samsung's FUS, FOTA and download servers, for
// tests, benchmarks and offline demos. See docs/sim.md.
#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "sim/faults.hpp"
#include "sim/simulator.hpp"

namespace {

constexpr std::string_view usage =
    "usage: fus-sim [--listen HOST:PORT] [--port-file F] [--catalogue FILE]\n"
    "               [--throttle-bps N] [--faults SPEC] [--legacy-keys 2020|2023|2026|KEY1:KEY2]\n"
    "               [--require-imei] [--allow-remote] [--content-md5 base64|hex] [--threads N]\n"
    "               [--lenient]\n"
    "\n"
    "  --listen HOST:PORT   address to serve on (default 127.0.0.1:0, port 0 picks one);\n"
    "                       a non-loopback address needs --allow-remote\n"
    "  --port-file F        write the bound port and a newline to F once listening\n"
    "  --catalogue FILE     JSON catalogue of models, regions and builds (default: built-in)\n"
    "  --throttle-bps N     per-connection download rate in bytes/s (20MB, 5MiB, ...; 0: none)\n"
    "  --faults SPEC        faults armed at start, e.g. drop-after=4MiB*3,status=503@download*2\n"
    "  --legacy-keys K      key set of the legacy dialect (default 2026)\n"
    "  --require-imei       legacy BinaryInform needs a valid DEVICE_IMEI_PUSH (else 408)\n"
    "  --content-md5 FORM   send Content-MD5 of the encrypted file on downloads\n"
    "  --threads N          I/O threads (default 1: fastest for one connection)\n"
    "  --lenient            turn off the strict session-conduct checks (on by default:\n"
    "                       InitForMass only after BinaryInform in the same session,\n"
    "                       SmartHistory only with a session cookie, FOTA only for the\n"
    "                       User-Agents working clients send)\n"
    "See docs/sim.md for the fault SPEC and the /_sim/ control routes.\n";

int fail(const std::string& message) {
  std::fprintf(stderr, "fus-sim: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  fusproxy::sim::simulator_options options;
  std::string port_file, catalogue_file;
  unsigned threads = 1;

  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::string_view value;
    bool has_inline_value = false;
    if (arg.starts_with("--")) {
      if (const auto eq = arg.find('='); eq != std::string_view::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline_value = true;
      }
    }
    const auto need_value = [&]() -> bool {
      if (has_inline_value) return true;
      if (i + 1 >= args.size()) return false;
      value = args[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage.data(), stdout);
      return 0;
    } else if (arg == "--require-imei") {
      options.require_imei = true;
    } else if (arg == "--lenient") {
      options.lenient = true;
    } else if (arg == "--allow-remote") {
      options.allow_remote = true;
    } else if (arg == "--listen" || arg == "--port-file" || arg == "--catalogue" ||
               arg == "--throttle-bps" || arg == "--faults" || arg == "--legacy-keys" ||
               arg == "--content-md5" || arg == "--threads") {
      if (!need_value()) return fail(std::string(arg) + " needs a value");
      if (arg == "--listen") {
        const auto colon = value.rfind(':');
        if (colon == std::string_view::npos) return fail("--listen: expected HOST:PORT");
        options.listen_host = std::string(value.substr(0, colon));
        const auto port = value.substr(colon + 1);
        unsigned p = 0;
        const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc{} || ptr != port.data() + port.size() || p > 65535)
          return fail("--listen: bad port '" + std::string(port) + "'");
        options.listen_port = static_cast<std::uint16_t>(p);
      } else if (arg == "--port-file") {
        port_file = std::string(value);
      } else if (arg == "--catalogue") {
        catalogue_file = std::string(value);
      } else if (arg == "--throttle-bps") {
        const auto bps = fusproxy::sim::parse_size(value);
        if (!bps) return fail("--throttle-bps: expected bytes per second (e.g. 20000000, 20MB)");
        options.throttle_bps = *bps;
      } else if (arg == "--faults") {
        options.faults = std::string(value);
      } else if (arg == "--legacy-keys") {
        options.legacy_keys = std::string(value);
      } else if (arg == "--content-md5") {
        options.content_md5 = std::string(value);
      } else if (arg == "--threads") {
        const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), threads);
        if (ec != std::errc{} || ptr != value.data() + value.size() || threads == 0 || threads > 64)
          return fail("--threads: expected 1..64");
      }
    } else {
      std::fputs(usage.data(), stderr);
      return fail("unknown argument '" + std::string(arg) + "'");
    }
  }

  if (!catalogue_file.empty()) {
    std::ifstream in(catalogue_file, std::ios::binary);
    if (!in) return fail("--catalogue: cannot read " + catalogue_file);
    std::ostringstream text;
    text << in.rdbuf();
    std::string detail;
    auto cat = fusproxy::sim::catalogue::from_json(text.str(), &detail);
    if (!cat)
      return fail("--catalogue " + catalogue_file + ": " + cat.error().message() +
                  (detail.empty() ? "" : ": " + detail));
    options.catalogue = std::move(*cat);
  }

  try {
    boost::asio::io_context ioc;
    fusproxy::sim::simulator sim(ioc, options);

    if (!port_file.empty()) {
      // Written to a temporary name first, so a poller never reads half a number.
      const auto tmp = port_file + ".tmp";
      {
        std::ofstream out(tmp, std::ios::trunc);
        out << sim.port() << '\n';
        if (!out) return fail("--port-file: cannot write " + tmp);
      }
      std::error_code ec;
      std::filesystem::rename(tmp, port_file, ec);
      if (ec) return fail("--port-file: cannot write " + port_file + ": " + ec.message());
    }
    std::fprintf(stderr, "fus-sim: listening on %s\n", sim.base_url().c_str());

    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      std::fprintf(stderr, "fus-sim: stopping\n");
      sim.stop();
      ioc.stop();  // the process ends here; the kernel closes what is still open
    });

    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : pool) t.join();
  } catch (const fusproxy::sim::start_error& e) {
    return fail(e.what());
  } catch (const std::exception& e) {
    return fail(std::string("failed: ") + e.what());
  }
  return 0;
}
