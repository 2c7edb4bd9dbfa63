// format_access_record: hand-written rather than through nlohmann::json, because it runs
// once per request on the worker's thread and must not allocate per field.

#include <chrono>

#include "gateway/access_log.hpp"
#include "gateway/append_number.hpp"

namespace phlow::gateway {

namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::string_view kReplacement = "\\ufffd";

// The length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlong
// forms, no surrogates, nothing past U+10FFFF), or 0 when there is none.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + length > s.size() || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k)
    if (byte(k) < 0x80 || byte(k) > 0xBF) return 0;
  return length;
}

void append_control(std::string& out, unsigned char c) {
  switch (c) {
    case '\n': out += "\\n"; return;
    case '\r': out += "\\r"; return;
    case '\t': out += "\\t"; return;
    case '\b': out += "\\b"; return;
    case '\f': out += "\\f"; return;
    default:
      const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out.append(escaped, sizeof escaped);
  }
}

// Copies runs of plain ASCII in one append; only the rare special byte is handled alone.
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  std::size_t run = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out.append(s.data() + run, i - run);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20) {
      append_control(out, c);
      ++i;
    } else if (const std::size_t n = utf8_sequence_length(s, i); n != 0) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      out += kReplacement;
      ++i;
    }
    run = i;
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

// Zero-padded to `width` digits.
void append_padded(std::string& out, long long value, int width) {
  char buf[8];
  for (int k = width - 1; k >= 0; --k) {
    buf[k] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(buf, static_cast<std::size_t>(width));
}

// Milliseconds with exactly three decimals; a negative duration (clock step) prints 0.000.
void append_ms(std::string& out, std::chrono::microseconds d) {
  const long long us = d.count() < 0 ? 0 : d.count();
  append_number(out, us / 1000);
  out += '.';
  append_padded(out, us % 1000, 3);
}

// "2026-11-27T10:31:02" by civil-calendar arithmetic rather than gmtime_r.
std::string format_second(std::chrono::sys_seconds t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day date{day};
  const hh_mm_ss clock{t - day};
  std::string out;
  append_padded(out, static_cast<int>(date.year()), 4);
  out += '-';
  append_padded(out, static_cast<unsigned>(date.month()), 2);
  out += '-';
  append_padded(out, static_cast<unsigned>(date.day()), 2);
  out += 'T';
  append_padded(out, clock.hours().count(), 2);
  out += ':';
  append_padded(out, clock.minutes().count(), 2);
  out += ':';
  append_padded(out, clock.seconds().count(), 2);
  return out;
}

// 2026-11-27T10:31:02.123Z. Records of one worker mostly fall in the same second, so
// the calendar part is formatted once per second and thread (a cache, not shared state).
void append_time(std::string& out, std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  thread_local sys_seconds cached_second{seconds::min()};
  thread_local std::string cached_text;
  const auto ms = floor<milliseconds>(t);
  const auto second = floor<seconds>(ms);
  if (second != cached_second) {
    cached_text = format_second(second);
    cached_second = second;
  }
  out += cached_text;
  out += '.';
  append_padded(out, (ms - second).count(), 3);
  out += 'Z';
}

void field(std::string& out, std::string_view key, std::string_view value) {
  out.append(key);
  append_json_string(out, value);
}

}  // namespace

void format_access_record(const AccessRecord& r, std::string& out) {
  out += "{\"time\":\"";
  append_time(out, r.time);
  field(out, "\",\"request_id\":", r.request_id);
  field(out, ",\"client_ip\":", r.client_ip);
  field(out, ",\"method\":", r.method);
  field(out, ",\"path\":", r.path);
  field(out, ",\"route\":", r.route);
  field(out, ",\"upstream\":", r.upstream);
  out += ",\"status\":";
  append_number(out, r.status);
  out += ",\"bytes_in\":";
  append_number(out, r.bytes_in);
  out += ",\"bytes_out\":";
  append_number(out, r.bytes_out);
  out += ",\"duration_ms\":";
  append_ms(out, r.total);
  out += ",\"limiter_ms\":";
  append_ms(out, r.limiter);
  out += ",\"upstream_ms\":";
  append_ms(out, r.upstream_time);
  field(out, ",\"decision\":", r.decision);
  field(out, ",\"limit\":", r.limit);
  field(out, ",\"identifier\":", r.identifier);
  if (r.cost != 0) {
    out += ",\"cost\":";
    append_number(out, r.cost);
  }
  if (r.response_cost != 0) {
    out += ",\"response_cost\":";
    append_number(out, r.response_cost);
  }
  out += "}\n";
}

}  // namespace phlow::gateway
