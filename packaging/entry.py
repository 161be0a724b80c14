"""Bundle entry point: the same as `python -m fabricsearch`."""

import multiprocessing

from fabricsearch.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the importer uses a process pool
    raise SystemExit(main())
