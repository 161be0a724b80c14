"""The desktop application (the only package that imports PySide6).

`app.run()` starts it; `main_window.MainWindow` is a thin shell wiring the panels in
`widgets/` and the dialogs in `dialogs/`; long work runs in `workers.Worker`.
"""
