"""Dialogs. Each is opened with ``open()`` (window-modal, never a nested event loop)."""
