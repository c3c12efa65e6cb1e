# CARINA_SANITIZE=address,undefined (CI) or thread. Applied to everything we compile and link.
if(CARINA_SANITIZE)
  add_compile_options(-fsanitize=${CARINA_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${CARINA_SANITIZE})
endif()
