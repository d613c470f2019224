# Every external dependency of duet, found as an installed system package
# (Debian 12 packages, installed by scripts/setup.sh). No source is copied into
# this repository; third_party/README.md says which package provides what.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

find_package(absl REQUIRED CONFIG)
find_package(Protobuf REQUIRED)
find_package(gRPC REQUIRED CONFIG)
find_package(glog REQUIRED CONFIG)
find_package(GTest REQUIRED)
find_package(benchmark REQUIRED CONFIG)
find_package(nlohmann_json 3.11 REQUIRED CONFIG)
find_package(Boost 1.74 REQUIRED)
find_package(Gloo REQUIRED CONFIG)

pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)

find_program(DUET_PROTOC protoc REQUIRED)
find_program(DUET_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

# Gloo's exported target carries no include directory on Debian; wrap it.
add_library(duet::gloo INTERFACE IMPORTED)
target_link_libraries(duet::gloo INTERFACE gloo)
target_include_directories(duet::gloo INTERFACE ${GLOO_INCLUDE_DIRS})
