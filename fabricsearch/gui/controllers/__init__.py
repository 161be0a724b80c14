"""What the window does, one controller per concern (library, search, labelling, training).

Each controller acts on the window's widgets and runs long work through the window's
`JobRunner`; the window itself only builds widgets and menus and wires them to these."""
