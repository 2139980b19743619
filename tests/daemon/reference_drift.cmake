# Fails when configs/reference.yaml differs from `fsd --print-reference-config`, so the
# committed reference cannot drift from the option table.
#   cmake -DFSD=<fsd> -DREFERENCE=<configs/reference.yaml> -DOUT=<scratch file> -P this
execute_process(COMMAND ${FSD} --print-reference-config OUTPUT_FILE ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "fsd --print-reference-config failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${REFERENCE} ${OUT} RESULT_VARIABLE diff)
if(NOT diff EQUAL 0)
    execute_process(COMMAND diff -u ${REFERENCE} ${OUT})
    message(FATAL_ERROR "${REFERENCE} is stale; regenerate it:\n"
                        "  fsd --print-reference-config > configs/reference.yaml")
endif()
message(STATUS "${REFERENCE} matches the generator")
