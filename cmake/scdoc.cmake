# Runs scdoc on IN into OUT: scdoc reads stdin and writes stdout, which add_custom_command
# cannot redirect portably. Usage: cmake -DSCDOC=... -DIN=... -DOUT=... -P scdoc.cmake
execute_process(COMMAND ${SCDOC} INPUT_FILE ${IN} OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE r)
if(NOT r EQUAL 0)
  file(REMOVE ${OUT}.tmp)
  message(FATAL_ERROR "scdoc failed on ${IN}")
endif()
file(RENAME ${OUT}.tmp ${OUT})
