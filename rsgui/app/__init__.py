"""The desktop application: archive browser, composite viewer, query and result panels.

Nothing here imports torch at import time; the window must appear fast.
"""
