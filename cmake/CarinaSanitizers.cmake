# CARINA_SANITIZE=address,undefined (CI) or thread. Applied to everything we compile and link.
if(CARINA_SANITIZE)
  add_compile_options(-fsanitize=${CARINA_SANITIZE} -fno-omit-frame-pointer
                      -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${CARINA_SANITIZE})
  # GCC 12 reports maybe-uninitialized false positives inside std::regex and std::function when
  # sanitizers instrument them, and -Wtsan on Asio's atomic_thread_fence: neither is in our code.
  add_compile_options(-Wno-maybe-uninitialized)
  if(CARINA_SANITIZE MATCHES "thread")
    add_compile_options(-Wno-tsan)
  endif()
endif()
