# Resolves DUET_CUDA (AUTO|ON|OFF) into DUET_WITH_CUDA and, when on, enables
# the CUDA language and finds the toolkit and NCCL.
include(CheckLanguage)

set(DUET_WITH_CUDA OFF)
string(TOUPPER "${DUET_CUDA}" _duet_cuda)
if(NOT _duet_cuda MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "DUET_CUDA must be AUTO, ON or OFF (got '${DUET_CUDA}')")
endif()

if(NOT _duet_cuda STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(DUET_WITH_CUDA ON)
  elseif(_duet_cuda STREQUAL "ON")
    message(FATAL_ERROR "DUET_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()

if(DUET_WITH_CUDA)
  if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES ${DUET_CUDA_ARCHITECTURES})
  endif()
  set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no CUDA 20 flags for nvcc
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  find_path(NCCL_INCLUDE_DIR nccl.h
    HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include /usr/include)
  find_library(NCCL_LIBRARY nccl
    HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu)
  if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
    message(FATAL_ERROR "CUDA build needs NCCL (nccl.h and libnccl)")
  endif()
  add_library(duet::nccl UNKNOWN IMPORTED)
  set_target_properties(duet::nccl PROPERTIES
    IMPORTED_LOCATION "${NCCL_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}")
  message(STATUS "duet: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                 "architectures ${CMAKE_CUDA_ARCHITECTURES}, NCCL ${NCCL_LIBRARY})")
else()
  message(STATUS "duet: CUDA backend OFF")
endif()
