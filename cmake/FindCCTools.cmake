# Find CCTools under -DCCTOOLS=<prefix>: work_queue_worker, and a Python (3.9 or newer)
# that imports Work Queue's module (ndcctools.work_queue or work_queue).
#
# Sets CCTOOLS_WORKER, CCTOOLS_PYTHON (the interpreter the installed commands will run)
# and CCTOOLS_PYTHONPATH (the directory holding the module; empty if importable as is).

if(NOT CCTOOLS)
  message(FATAL_ERROR "CCTOOLS is not set: run cmake with -DCCTOOLS=<CCTools prefix> "
                      "(Debian packages: -DCCTOOLS=/usr)")
endif()
get_filename_component(CCTOOLS "${CCTOOLS}" ABSOLUTE)

set(CCTOOLS_WORKER "${CCTOOLS}/bin/work_queue_worker")
if(NOT EXISTS "${CCTOOLS_WORKER}")
  message(FATAL_ERROR "CCTOOLS=${CCTOOLS} has no bin/work_queue_worker: is it a CCTools "
                      "installation? (Debian: apt-get install coop-computing-tools; then -DCCTOOLS=/usr)")
endif()

if(PYTHON)
  set(_awq_interpreters "${PYTHON}")
else()
  find_program(_awq_path_python python3)
  set(_awq_interpreters "${CCTOOLS}/bin/python3" /usr/bin/python3 "${_awq_path_python}")
endif()

file(GLOB _awq_dirs "${CCTOOLS}/lib/python3*/site-packages" "${CCTOOLS}/lib64/python3*/site-packages")
if(CCTOOLS STREQUAL "/usr")
  list(APPEND _awq_dirs /usr/lib/python3/dist-packages)
endif()
list(APPEND _awq_dirs "NONE")  # already importable (conda, or on the default path)

# Probed as the installed commands run (bin/awq-command.in): isolated (-I), the module's
# directory put on sys.path from inside, so what passes here is what the commands will do.
set(_awq_probe "import sys\nif sys.version_info < (3, 9): sys.exit(3)\nif sys.argv[1:] and sys.argv[1]: sys.path.insert(0, sys.argv[1])\ntry:\n    import ndcctools.work_queue\nexcept ImportError:\n    import work_queue\n")
set(_awq_tried "")
set(_awq_too_old "")
foreach(_awq_python IN LISTS _awq_interpreters)
  if(NOT _awq_python OR NOT EXISTS "${_awq_python}")
    continue()
  endif()
  foreach(_awq_dir IN LISTS _awq_dirs)
    if(_awq_dir STREQUAL "NONE")
      set(_awq_pp "")
    else()
      set(_awq_pp "${_awq_dir}")
    endif()
    execute_process(COMMAND "${_awq_python}" -I -c "${_awq_probe}" "${_awq_pp}"
                    RESULT_VARIABLE _awq_rc OUTPUT_QUIET ERROR_QUIET)
    if(_awq_rc EQUAL 0)
      set(CCTOOLS_PYTHON "${_awq_python}")
      set(CCTOOLS_PYTHONPATH "${_awq_pp}")
      break()
    elseif(_awq_rc EQUAL 3)
      list(APPEND _awq_too_old "${_awq_python}")
      break()
    endif()
    if(_awq_pp)
      list(APPEND _awq_tried "${_awq_python} -I, with ${_awq_pp} on sys.path")
    else()
      list(APPEND _awq_tried "${_awq_python} -I, as it is")
    endif()
  endforeach()
  if(CCTOOLS_PYTHON)
    break()
  endif()
endforeach()

if(NOT CCTOOLS_PYTHON)
  string(REPLACE ";" "\n  " _awq_tried_text "${_awq_tried}")
  if(_awq_too_old)
    set(_awq_old_text "\nOlder than Python 3.9 (not usable): ${_awq_too_old}")
  endif()
  message(FATAL_ERROR "No Python 3.9+ interpreter can import Work Queue's module "
                      "(ndcctools.work_queue or work_queue) from CCTOOLS=${CCTOOLS}. Tried:\n  "
                      "${_awq_tried_text}${_awq_old_text}\n"
                      "Install CCTools' Python bindings (Debian: python3-workqueue) or "
                      "name the interpreter with -DPYTHON=/path/to/python3.")
endif()
message(STATUS "CCTools: ${CCTOOLS_WORKER}")
message(STATUS "Python for alien-workqueue: ${CCTOOLS_PYTHON} (Work Queue module dir: ${CCTOOLS_PYTHONPATH})")
