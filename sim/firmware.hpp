#pragma once
// A synthetic firmware build: a real zip (BL_/AP_/CP_/CSC_/HOME_CSC_ *.tar.md5 members,
// stored and deflated, zip64 when large) generated deterministically from the build's seed,
// and its ECB-encrypted form. Each member is a ustar archive of LZ4 frames (boot.img.lz4,
// super.img.lz4, modem.bin.lz4, ...) followed by the MD5 line of a .tar.md5. Any byte range
// of the zip, of a member or of a decoded image is computed on its own, without
// materialising the file; the encrypted CRC-32 is computed without reading every byte.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "crypto/keys.hpp"
#include "sim/catalogue.hpp"

namespace fusproxy::sim {

// One entry of a member's tar.
struct tar_entry {
  std::string name;                     // "boot.img.lz4", "vbmeta.img", "meta-data/fota.zip"
  std::uint64_t offset = 0;             // first data byte, within the (uncompressed) member
  std::uint64_t size = 0;               // bytes in the tar
  std::int64_t mtime = 0;               // seconds since the epoch (the build's last_modified)
  std::uint32_t mode = 0644;            // permission bits
  bool lz4 = false;                     // an LZ4 frame (else plain bytes)
  std::uint64_t decoded_size = 0;       // lz4: bytes of the decoded image
  bool content_size_in_header = false;  // lz4: the frame header carries decoded_size
  bool independent_blocks = true;       // lz4
  bool block_checksum = false;          // lz4
  bool content_checksum = false;        // lz4
  std::uint32_t block_size = 0;         // lz4: the frame's maximum block size
  // lz4: a block's data does not match its checksum (catalogue corrupt_lz4); the decoded
  // bytes before `valid_decoded_prefix` come out right, then a decoder must fail.
  bool corrupt = false;
  std::uint64_t valid_decoded_prefix = 0;
};

// One member of the synthetic zip, as its headers describe it.
struct zip_member {
  std::string name;
  std::string kind;  // "BL", "AP", "CP", "CSC", "HOME_CSC"; "" not a tar
  bool tar = true;   // a .tar.md5 (else a plain file: the text member)
  bool deflated = false;
  std::uint64_t header_offset = 0;    // local file header
  std::uint64_t data_offset = 0;      // first byte of the (compressed) data
  std::uint64_t compressed_size = 0;  // bytes in the file
  std::uint64_t size = 0;             // uncompressed
  std::uint32_t crc32 = 0;            // of the uncompressed data
  std::vector<tar_entry> entries;     // the tar's entries, in archive order
  std::uint64_t tar_size = 0;         // bytes the MD5 line covers (a multiple of 10240)
  std::string md5_hex;                // the MD5 line's digest (empty: not a tar)
};

class firmware_image {
 public:
  // Cheap for any size (a few MiB of tables and period blocks, milliseconds of work).
  // Throws std::invalid_argument for a build the catalogue would refuse (plain_size out of
  // range, LOGIC_VALUE too short): catalogues are validated at start-up.
  explicit firmware_image(const build& b);
  ~firmware_image();
  firmware_image(firmware_image&&) noexcept;
  firmware_image& operator=(firmware_image&&) noexcept;

  std::uint64_t plain_size() const;
  std::uint64_t encrypted_size() const;   // plain_size rounded up to 16, +16 when aligned
  const crypto::aes_key& key() const;     // enc4 or enc2 key of the build
  std::uint32_t encrypted_crc32() const;  // true CRC-32 of the encrypted file
  // What BINARY_CRC announces: the build's crc_override when set, else encrypted_crc32().
  std::uint32_t announced_crc32() const;

  // Fill `out` with the bytes at [offset, offset + out.size()); the range must lie inside
  // the file (bytes past the end are written as zeros). Thread-safe: only memcpy from
  // tables made at construction, so >= 1.5 GB/s from one core (encrypted).
  void read_plain(std::uint64_t offset, std::span<std::uint8_t> out) const;
  void read_encrypted(std::uint64_t offset, std::span<std::uint8_t> out) const;

  // SHA-256 (hex) of the plain zip: reads the whole file, so slow for big builds.
  std::string plain_sha256() const;
  // MD5 (base64) of the encrypted file, for Content-MD5; same cost.
  std::string encrypted_md5_base64() const;

  // The zip's layout, for tests: members in file order, and whether zip64 records are used.
  const std::vector<zip_member>& members() const;
  bool zip64() const;

  // Bytes [offset, offset + out.size()) of members()[member] uncompressed (the tar.md5),
  // and of the decoded image of its LZ4 entry `entry` (an index into its entries). Ranges
  // must lie inside. Thread-safe.
  void read_member(std::size_t member, std::uint64_t offset, std::span<std::uint8_t> out) const;
  void read_decoded(std::size_t member, std::size_t entry, std::uint64_t offset,
                    std::span<std::uint8_t> out) const;
  // SHA-256 (hex) of an entry as stored in the tar, or of its decoded image: streams it.
  std::string entry_sha256(std::size_t member, std::size_t entry, bool decoded) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fusproxy::sim
