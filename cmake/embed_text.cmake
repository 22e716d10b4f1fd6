# Run by mg_embed_text (cmake/embed.cmake) at build time:
#   cmake -DNAME=ns::kName -DINPUTS=a|b -DOUTPUT=out.cc -DSOURCE_DIR=root -P embed_text.cmake
# writes OUTPUT defining `const char* const kName` in namespace `ns` as the
# bytes of the INPUTS, in order, each byte a \xNN escape (any byte is safe).
string(REPLACE "|" ";" inputs "${INPUTS}")
string(REGEX MATCH "^(.*)::([A-Za-z_][A-Za-z0-9_]*)$" qualified "${NAME}")
if(NOT qualified)
  message(FATAL_ERROR "embed_text: NAME must be namespace::identifier, got '${NAME}'")
endif()
set(namespace "${CMAKE_MATCH_1}")
set(identifier "${CMAKE_MATCH_2}")

set(hex "")
set(sources "")
foreach(input IN LISTS inputs)
  file(READ "${input}" part HEX)
  string(APPEND hex "${part}")
  file(RELATIVE_PATH relative "${SOURCE_DIR}" "${input}")
  string(APPEND sources " ${relative}")
endforeach()
# 32 bytes a line, then every byte as \xNN.
string(REPEAT "[0-9a-f]" 64 line)
string(REGEX REPLACE "(${line})" "\\1\n" hex "${hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" hex "${hex}")
string(REGEX REPLACE "\n$" "" hex "${hex}")
string(REPLACE "\n" "\"\n    \"" hex "${hex}")

file(WRITE "${OUTPUT}.tmp"
     "// Generated at build time from${sources} by cmake/embed_text.cmake.\n"
     "namespace ${namespace} {\n"
     "extern const char* const ${identifier};\n"
     "const char* const ${identifier} =\n"
     "    \"${hex}\";\n"
     "}  // namespace ${namespace}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
