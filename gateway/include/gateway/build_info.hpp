#pragma once
// What was built: the project version (CMakeLists.txt's project() is its one source),
// the git commit and the CMake build type, from a header generated at build time.

#include <string_view>

namespace phlow::gateway {

std::string_view version();     // "0.1.0"
std::string_view git_commit();  // 12 hex digits, "-dirty" when tracked files differed; "unknown" outside git
std::string_view build_type();  // "Release", "RelWithDebInfo", "Debug", ...

}  // namespace phlow::gateway
