import sys

if sys.argv[1:2] == ["scaling"]:
    # The scaling curve runs by itself (half an hour): not part of the default suite.
    from benchmarks.scaling import main as scaling_main
    sys.exit(scaling_main(sys.argv[2:]))

from benchmarks.suite import main

sys.exit(main())
