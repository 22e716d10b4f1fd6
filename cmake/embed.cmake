# mg_embed_text(TARGET NAME FILE...): compiles the text of FILE... (joined in
# that order) into TARGET as `extern const char* const NAME`, a qualified C++
# name such as mongoguard::proxy::fleet::kGrantScript. The files stay real
# files (the page, the Lua scripts) that editors, linters and tests read; the
# .cc is generated in the build folder and regenerated when one changes.
include_guard(GLOBAL)

function(mg_embed_text target name)
  set(generator ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_text.cmake)
  set(inputs)
  foreach(file IN LISTS ARGN)
    cmake_path(ABSOLUTE_PATH file BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND inputs ${file})
  endforeach()
  string(MAKE_C_IDENTIFIER "${name}" id)
  set(output ${CMAKE_CURRENT_BINARY_DIR}/embedded/${id}.cc)
  # The list goes through the command line joined by '|': ';' would split it.
  list(JOIN inputs "|" joined)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DNAME=${name} -DINPUTS=${joined} -DOUTPUT=${output}
            -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -P ${generator}
    DEPENDS ${inputs} ${generator}
    COMMENT "Embedding ${name}"
    VERBATIM)
  target_sources(${target} PRIVATE ${output})
endfunction()
