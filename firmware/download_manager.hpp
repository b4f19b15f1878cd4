#pragma once
// The registry of fetch jobs (one per build, keyed by BINARY_NAME) and the representations
// clients read: the plain zip (the file's bytes as they land) and the encrypted file
// (the plain bytes re-encrypted on the fly: AES-128-ECB plus the PKCS#7 final block, byte-
// exact with upstream), a zip member, a file inside a tar member. A representation is
// obtained without starting any fetch (HEAD, 304, 416 use only its fields); its body
// (bodies.hpp) joins (or starts) the build's job when read.
//
// Files under --cache-dir: partial/<plain name>.part (+ .map: the present runs) while
// fetching, builds/<plain name> once the CRC-32 matched (atomic rename).
//
// Threading: one executor (thread) for everything, as the resolver; only the jobs' per-byte
// landing work runs on the manager's own small thread pool (download_settings::fetch_threads).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <filesystem>
#include <memory>
#include <string>

#include "fetch/build_cache.hpp"
#include "fetch/fetch_job.hpp"
#include "firmware/firmware_service.hpp"

namespace fusproxy::server {

struct download_settings {
  std::filesystem::path cache_dir;
  std::uint64_t cache_max_bytes = 0;  // 0: no limit
  fetch_options fetch;
  // Threads the jobs land fetched bytes on (CRC, decrypt, pwrite), owned by the manager;
  // 0: inline on the executor (fetch.land_on is then left as given).
  unsigned fetch_threads = 0;
};

class build_cache;

class download_manager {
 public:
  download_manager(boost::asio::any_io_executor executor, upstream::fus_client& client,
                   download_settings settings, std::shared_ptr<spdlog::logger> log,
                   upstream_metrics* metrics = nullptr);  // optional: what it records into
  ~download_manager();
  download_manager(const download_manager&) = delete;
  download_manager& operator=(const download_manager&) = delete;

  // The plain or encrypted representation of a build (member: not here). cache_full when a
  // build not cached yet has no room (the limit is held by builds in use, or the disk is
  // full): nothing was written.
  service_result<download_representation> representation(const build_source& source,
                                                         download_variant variant, freshness fresh);
  // The zip's members (its central directory, read by small decrypted ranges near the end
  // of the file, from the cache when present, else upstream; no fetch job starts).
  boost::asio::awaitable<service_result<std::vector<zip_member>>> files(build_source source);
  // One member, uncompressed (stored as is, deflated inflated on the fly); the local
  // header is read like the directory. not_found when the zip has no such member.
  boost::asio::awaitable<service_result<download_representation>> member_representation(
      build_source source, std::string name, freshness fresh);

  // Files inside tar members (issue 14; docs/archive.md). The entries of a tar member
  // (full name or AP, BL, CP, CSC, HOME_CSC), read from its headers, sparse.
  boost::asio::awaitable<service_result<std::vector<tar_entry_info>>> entries(build_source source,
                                                                              std::string member);
  // One entry (`path` names it, or "<path>.lz4" decoded). member_representation() comes here
  // for "{member}/{path}".
  boost::asio::awaitable<service_result<download_representation>> entry_representation(
      build_source source, std::string member, std::string path, freshness fresh);

  // The build's job, joined or started (opened, not yet fetching until read).
  boost::system::result<std::shared_ptr<fetch_job>> job_for(const build_source& source);

  // Stops every job (shutdown).
  void stop_all();
  // Tasks of the jobs not finished yet (after stop_all(), wait for 0 before destroying).
  std::size_t tasks_running() const;

  // The cache directory's index (scanned at construction).
  build_cache& cache();
  const build_cache& cache() const;
  // Whether a build's fetch job is running (its file is being written).
  bool fetching(const std::string& binary_name) const;
  // Operator removal of a cached build (and its job): in_use while read or fetched.
  service_result<void> remove_build(const std::string& binary_name);

  void refresh_metrics();                         // /metrics: the gauges of the jobs in memory
  boost::json::array status_json() const;         // the jobs
  boost::json::object cache_status_json() const;  // {"dir","max_bytes","used_bytes","builds":[…]}

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace fusproxy::server
