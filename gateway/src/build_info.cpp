#include "gateway/build_info.hpp"

#include "phlow_build_info.hpp"  // generated (cmake/build_info.cmake)

namespace phlow::gateway {

std::string_view version() { return PHLOW_VERSION; }
std::string_view git_commit() { return PHLOW_GIT_COMMIT; }
std::string_view build_type() { return PHLOW_BUILD_TYPE; }

}  // namespace phlow::gateway
