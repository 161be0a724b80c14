"""One module per hashing method; each registers its class with `registry.register_method`.

The registry imports the modules named in `registry.BUILTIN_METHOD_MODULES` explicitly; nothing
is imported here.
"""
