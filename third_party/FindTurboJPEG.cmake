# FindTurboJPEG: the TurboJPEG API of libjpeg-turbo, always as the target TurboJPEG::TurboJPEG.
# libjpeg-turbo 2.1+ installs a CMake config (target libjpeg-turbo::turbojpeg), which is preferred;
# older or hand-built installs have only the header and library, found by hand.
#
# Result: TurboJPEG_FOUND, TurboJPEG_VERSION (when known) and TurboJPEG::TurboJPEG.
include(FindPackageHandleStandardArgs)

find_package(libjpeg-turbo CONFIG QUIET)

if(TARGET libjpeg-turbo::turbojpeg)
  set(TurboJPEG_VERSION "${libjpeg-turbo_VERSION}")
  find_package_handle_standard_args(TurboJPEG
    REQUIRED_VARS libjpeg-turbo_DIR
    VERSION_VAR TurboJPEG_VERSION)
  if(TurboJPEG_FOUND AND NOT TARGET TurboJPEG::TurboJPEG)
    add_library(TurboJPEG::TurboJPEG INTERFACE IMPORTED)
    set_property(TARGET TurboJPEG::TurboJPEG PROPERTY
                 INTERFACE_LINK_LIBRARIES libjpeg-turbo::turbojpeg)
  endif()
  return()
endif()

find_path(TurboJPEG_INCLUDE_DIR NAMES turbojpeg.h HINTS ENV TurboJPEG_ROOT PATH_SUFFIXES include)
find_library(TurboJPEG_LIBRARY NAMES turbojpeg HINTS ENV TurboJPEG_ROOT PATH_SUFFIXES lib64 lib)

# turbojpeg.h carries no version; jconfig.h (in a multiarch directory on Debian) does.
find_file(_turbojpeg_jconfig NAMES jconfig.h
  HINTS "${TurboJPEG_INCLUDE_DIR}"
  PATH_SUFFIXES ${CMAKE_LIBRARY_ARCHITECTURE}
  NO_CACHE)
if(_turbojpeg_jconfig)
  file(STRINGS "${_turbojpeg_jconfig}" _turbojpeg_version_line
       REGEX "^#define LIBJPEG_TURBO_VERSION +[0-9.]+")
  if(_turbojpeg_version_line MATCHES "LIBJPEG_TURBO_VERSION +([0-9.]+)")
    set(TurboJPEG_VERSION "${CMAKE_MATCH_1}")
  endif()
  unset(_turbojpeg_version_line)
endif()
unset(_turbojpeg_jconfig)

find_package_handle_standard_args(TurboJPEG
  REQUIRED_VARS TurboJPEG_LIBRARY TurboJPEG_INCLUDE_DIR
  VERSION_VAR TurboJPEG_VERSION)

if(TurboJPEG_FOUND AND NOT TARGET TurboJPEG::TurboJPEG)
  add_library(TurboJPEG::TurboJPEG UNKNOWN IMPORTED)
  set_target_properties(TurboJPEG::TurboJPEG PROPERTIES
    IMPORTED_LOCATION "${TurboJPEG_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${TurboJPEG_INCLUDE_DIR}")
endif()

mark_as_advanced(TurboJPEG_INCLUDE_DIR TurboJPEG_LIBRARY)
