# Installs the files whose place depends on the prefix chosen at install time
# (`cmake --install --prefix P`, or /usr when cpack builds the .deb):
#   <etc>/phlow/gateway.yaml                       (kept when it exists)
#   <prefix>/lib/systemd/system/phlow-gateway.service, its paths set for the prefix
# where <etc> is /etc for the prefix /usr, else <prefix>/etc (as GNUInstallDirs).
# Inputs: PHLOW_SOURCE_DIR; CMAKE_INSTALL_PREFIX and DESTDIR from the install.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(etc "/etc")
else()
  set(etc "${CMAKE_INSTALL_PREFIX}/etc")
endif()

set(config "$ENV{DESTDIR}${etc}/phlow/gateway.yaml")
if(EXISTS "${config}")
  message(STATUS "Kept: ${config}")
else()
  # file(INSTALL) puts $ENV{DESTDIR} in front of DESTINATION itself.
  file(INSTALL "${PHLOW_SOURCE_DIR}/config/examples/phlow-agent.yaml"
       DESTINATION "${etc}/phlow" RENAME gateway.yaml
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endif()

file(READ "${PHLOW_SOURCE_DIR}/deploy/systemd/phlow-gateway.service" unit)
string(REPLACE "/usr/bin/phlow-gateway" "${CMAKE_INSTALL_PREFIX}/bin/phlow-gateway" unit "${unit}")
string(REPLACE "/etc/phlow/gateway.yaml" "${etc}/phlow/gateway.yaml" unit "${unit}")
set(staged "${CMAKE_CURRENT_BINARY_DIR}/install-staging/phlow-gateway.service")
file(WRITE "${staged}" "${unit}")
file(INSTALL "${staged}" DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
