# cmake -DIN=... -DOUT=... -P c_bytes.cmake: copies a .proto, declaring the fields of lines
# marked `fsd:c-bytes` as bytes instead of string (see proto/CMakeLists.txt).
file(READ ${IN} text)
string(REGEX REPLACE "string( [a-z_]+ = [0-9]+;[^\n]*fsd:c-bytes)" "bytes\\1" text "${text}")
file(WRITE ${OUT} "${text}")
