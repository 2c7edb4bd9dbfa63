#include "limiter/key_layout.hpp"

#include <boost/crc.hpp>

namespace phlow::limiter {

std::string KeyLayout::key_of_stored(std::string_view limit, std::string_view stored_identifier) const {
  std::string out;
  out.reserve(prefix_.size() + limit.size() + 1 + stored_identifier.size());
  out.append(prefix_).append(limit).append(":").append(stored_identifier);
  return out;
}

std::string KeyLayout::presence_key() const {
  return std::string(prefix_).append(kPresenceKeySuffix);
}

std::uint16_t KeyLayout::slot(std::string_view key) {
  if (const auto open = key.find('{'); open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  // CRC-16/XMODEM: polynomial 0x1021, initial value 0, not reflected. (Boost's
  // crc_xmodem_type is a reflected variant that Redis does not use.)
  boost::crc_optimal<16, 0x1021, 0, 0, false, false> crc;
  crc.process_bytes(key.data(), key.size());
  return static_cast<std::uint16_t>(crc.checksum() & 16383);
}

}  // namespace phlow::limiter
