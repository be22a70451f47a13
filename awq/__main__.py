"""`python -m awq --version`: the version every command reports."""

import sys

from awq import __version__

USAGE = "usage: python -m awq --version\n"

if __name__ == "__main__":
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write("alien-workqueue %s\n" % __version__)
        sys.exit(0)
    sys.stderr.write(USAGE)
    sys.exit(2)
