#include "limiter/store_error.hpp"

#include <string>

namespace phlow::limiter {

namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "phlow.store"; }
  std::string message(int ev) const override {
    switch (static_cast<StoreError>(ev)) {
      case StoreError::none: return "success";
      case StoreError::timeout: return "Redis did not answer before the deadline";
      case StoreError::connection: return "connection to Redis lost";
      case StoreError::server_error: return "Redis answered with an error";
      case StoreError::bad_reply: return "unexpected reply from Redis";
      case StoreError::not_connected: return "not connected to Redis";
    }
    return "unknown Redis error";
  }
};

}  // namespace

const boost::system::error_category& store_error_category() {
  static const Category category;
  return category;
}

boost::system::error_code make_error_code(StoreError e) {
  return {static_cast<int>(e), store_error_category()};
}

StoreError store_error_of(const boost::system::error_code& ec) {
  if (!ec) return StoreError::none;
  if (ec.category() == store_error_category() && ec.value() > 0 &&
      ec.value() < static_cast<int>(kStoreErrors)) {
    return static_cast<StoreError>(ec.value());
  }
  return StoreError::connection;
}

std::string_view metric_label(StoreError e) {
  static constexpr std::array<std::string_view, kStoreErrors> labels{
      "", "timeout", "connection", "server_error", "bad_reply", "not_connected"};
  return labels[static_cast<std::size_t>(e)];
}

}  // namespace phlow::limiter
