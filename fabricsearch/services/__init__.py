"""The application layer: what the front ends (``cli/``, ``gui/``) call for work.

One module per kind of work; each is a set of plain functions (``progress``/``cancel`` where
the work is long) that delegate to the core modules below:

* `imports`  — create a library, import a folder (+ features + the automatic head), encode;
* `training` — train (+ evaluate + decide + publish + encode + activate), encode, evaluate,
  pretrain, adapt, the method/backbone/preset registry;
* `versions` — list the models with their test figures, activate one;
* `search`   — the searcher, its filters and errors, encoding what lacks a code, palettes;
* `labels`   — labels CSV in/out, label suggestions;
* `records`  — metadata CSV in/out, copying a library, relocating a team library's photos;
* `watching` — the folder watcher;
* `demo`     — the demo library and synthetic data sets.

Importing a service module is cheap: the implementations (torch, faiss, …) are imported when
a function is called or a name is first read (PEP 562 ``__getattr__``), so a command that
only opens a library still starts fast. The package imports nothing of ``gui/`` or ``cli/``
and no module below it imports the package (tests/test_layers.py)."""
