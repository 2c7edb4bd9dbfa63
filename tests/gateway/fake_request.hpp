#pragma once
// A HeaderSource over a list of pairs, and a RequestView holder for tests.

#include <cctype>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/request_view.hpp"

namespace phlow::gateway::test {

class FakeHeaders : public HeaderSource {
 public:
  FakeHeaders() = default;
  FakeHeaders(std::initializer_list<std::pair<std::string, std::string>> fields)
      : fields_(fields) {}

  void for_each(std::string_view name,
                const std::function<void(std::string_view)>& fn) const override {
    for (const auto& [field, value] : fields_) {
      if (iequals(field, name)) fn(value);
    }
  }

 private:
  static bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(a[i])) !=
          std::tolower(static_cast<unsigned char>(b[i]))) {
        return false;
      }
    }
    return true;
  }

  std::vector<std::pair<std::string, std::string>> fields_;
};

// A request with its strings and headers kept alive beside the view.
struct FakeRequest {
  std::string method = "GET";
  std::string target = "/";
  std::string host = "example.com";
  std::string peer = "203.0.113.7";
  FakeHeaders headers;

  RequestView view() const { return RequestView{method, target, host, peer, headers}; }
};

}  // namespace phlow::gateway::test
