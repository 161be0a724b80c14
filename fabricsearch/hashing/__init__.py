"""Deep hashing: the method registry, networks, losses, training, encoding, checkpoints, metrics.

Public entry points:

* `registry.create_method(name, **overrides)`, `registry.available_methods()`
* `train.train(data, cfg)` (catalogue-free) and `train.train_library(lib, cfg)`
* `encode.encode_images(method, images)` and `encode.encode_library(lib, method, version)`
* `checkpoint.save_checkpoint` / `checkpoint.load_checkpoint`
* `metrics.evaluate_codes(...)`

Importing this package has no side effects: built-in methods are registered by
`registry.load_builtin_methods()`, which `create_method` and `available_methods` call.
"""
