# Every external library is found here, once, from Debian packages (see tools/setup.sh).
find_package(Threads REQUIRED)
find_package(absl REQUIRED)
find_package(FlatBuffers REQUIRED)
find_package(TBB REQUIRED)
find_package(dnnl REQUIRED)
find_package(OpenMP REQUIRED)  # oneDNN's threading runtime; kernels size its team
find_package(Gloo REQUIRED)
find_package(ZLIB REQUIRED)  # Fashion-MNIST's gzipped IDX files, checkpoint CRCs
find_package(TurboJPEG REQUIRED)  # third_party/FindTurboJPEG.cmake prefers the package's config
if(GRADFLOW_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(GRADFLOW_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()

# The CUDA path is optional: AUTO builds it when nvcc is found, ON insists, OFF never tries.
set(GRADFLOW_HAVE_CUDA OFF)
if(NOT GRADFLOW_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)  # "native" fails where no GPU is present
    endif()
    enable_language(CUDA)
    if(CMAKE_VERSION VERSION_LESS 3.26)  # CMake 3.25 has no CUDA20 dialect for nvcc
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)  # match CUDA::cudart
    find_package(CUDAToolkit REQUIRED)
    find_package(CUDNN REQUIRED)
    find_package(NCCL REQUIRED)
    set(GRADFLOW_HAVE_CUDA ON)
  elseif(GRADFLOW_CUDA STREQUAL "ON")
    message(FATAL_ERROR "GRADFLOW_CUDA=ON but no CUDA compiler (nvcc) was found; "
                        "put nvcc on PATH or configure with -DGRADFLOW_CUDA=OFF")
  endif()
endif()
message(STATUS "gradflow: CUDA path ${GRADFLOW_HAVE_CUDA} (GRADFLOW_CUDA=${GRADFLOW_CUDA})")

# A fuzz build (tools/fuzz.sh, its own build dir) instruments every target, not only the fuzz
# target: libFuzzer needs coverage of the library code it explores, and ASan/UBSan must see it.
# Sanitizer findings abort (no recovery) so that libFuzzer records them as crashes.
if(GRADFLOW_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "GRADFLOW_FUZZ=ON needs clang for libFuzzer (CMAKE_CXX_COMPILER_ID is "
                        "${CMAKE_CXX_COMPILER_ID}); configure with CXX=clang++ or use tools/fuzz.sh")
  endif()
  add_compile_options(
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link,address,undefined>
    $<$<COMPILE_LANGUAGE:CXX>:-fno-sanitize-recover=all>
    $<$<COMPILE_LANGUAGE:CXX>:-fno-omit-frame-pointer>)
  add_link_options(-fsanitize=address,undefined)
endif()
