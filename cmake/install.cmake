# `cmake --install` and `cpack -G DEB` (SPEC.md, "Deployment"). Two components:
#   runtime  bin/phlow-gateway, bin/phlow-demo-upstream, share/phlow-gateway/examples,
#            the systemd unit and /etc/phlow/gateway.yaml  -> the .deb "phlow-gateway"
#   dev      the limiter library, its headers and CMake package phlow_limiter
#                                                          -> the .deb "libphlow-limiter-dev"
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS phlow-gateway phlow-demo-upstream
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/config/examples/
        DESTINATION ${CMAKE_INSTALL_DATADIR}/phlow-gateway/examples COMPONENT runtime)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/RELIABILITY.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/phlow-gateway COMPONENT runtime)
# The config and the unit go where the prefix chosen at install time says.
install(CODE "set(PHLOW_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")" COMPONENT runtime)
install(SCRIPT ${PROJECT_SOURCE_DIR}/cmake/install_system_files.cmake COMPONENT runtime)

set(phlow_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/phlow_limiter)
install(TARGETS phlow_limiter EXPORT phlow_limiterTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/limiter/include/limiter
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(EXPORT phlow_limiterTargets NAMESPACE phlow:: DESTINATION ${phlow_cmake_dir}
        COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/phlow_limiterConfig.cmake.in
  ${PROJECT_BINARY_DIR}/phlow_limiterConfig.cmake INSTALL_DESTINATION ${phlow_cmake_dir})
# 0.x: a new minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/phlow_limiterConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/phlow_limiterConfig.cmake
              ${PROJECT_BINARY_DIR}/phlow_limiterConfigVersion.cmake
        DESTINATION ${phlow_cmake_dir} COMPONENT dev)

# cpack -G DEB (run in the build directory) -> phlow-gateway_<v>_<arch>.deb and
# libphlow-limiter-dev_<v>_<arch>.deb, installed under /usr.
set(CPACK_PACKAGE_NAME phlow-gateway)
set(CPACK_PACKAGE_VENDOR "phlow-gateway")
set(CPACK_PACKAGE_CONTACT "phlow-gateway maintainers <phlow-gateway@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
# The install runs with CMAKE_INSTALL_PREFIX=/usr and DESTDIR=<staging>, as
# cmake/install_system_files.cmake expects (so the config lands in /etc).
set(CPACK_SET_DESTDIR ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME phlow-gateway)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
# Depends: computed by dpkg-shlibdeps from the libraries the executables link.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS "redis-server")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles)
# Each description's first line is its package's summary.
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
  "Rate-limiting reverse proxy for agent HTTP services
Exact sliding-window limits shared across instances through Redis, still
protecting (in memory) when Redis is down. Ships a systemd unit
(phlow-gateway.service) and its config /etc/phlow/gateway.yaml.")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libphlow-limiter-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# What find_package(phlow_limiter) finds through find_dependency, and what the static
# library links.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libboost1.81-dev, libhiredis-dev, libssl-dev, libspdlog-dev, pkg-config")
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "phlow-gateway's rate-limiting engine as a C++ library
Static library, headers and the CMake package phlow_limiter:
find_package(phlow_limiter CONFIG REQUIRED), then link phlow::limiter.")
include(CPack)
