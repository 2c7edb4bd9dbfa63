#pragma once
// Why the shared store (Redis) could not decide a check: the one error enum of every
// store, every topology and every layer above it. An AsyncStore completes with it as a
// boost::system::error_code; a Decision carries it (store_failure); the gateway's
// redis_errors_total{kind} counts it by metric_label().

#include <array>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <string_view>

namespace phlow::limiter {

enum class StoreError : std::uint8_t {
  none = 0,       // the store decided
  timeout,        // no answer within the check deadline
  connection,     // the connection broke with the check in flight
  server_error,   // the store answered with an error (-OOM, -READONLY, ...)
  bad_reply,      // an answer that breaks the protocol or the script's contract
  not_connected,  // no usable connection: decided at once, without a round trip
};
inline constexpr std::size_t kStoreErrors = 6;
// The failures of a check that went out to the store (what the metrics count).
inline constexpr std::array<StoreError, 4> kRoundTripFailures{
    StoreError::timeout, StoreError::connection, StoreError::server_error, StoreError::bad_reply};

const boost::system::error_category& store_error_category();
boost::system::error_code make_error_code(StoreError e);
// `ec` as a StoreError: none for no error; connection for an error of another category.
StoreError store_error_of(const boost::system::error_code& ec);
// "timeout", "connection", "server_error", "bad_reply", "not_connected" ("" for none).
std::string_view metric_label(StoreError e);

}  // namespace phlow::limiter

template <>
struct boost::system::is_error_code_enum<phlow::limiter::StoreError> : std::true_type {};
