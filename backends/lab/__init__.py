"""The libvirt lab: two libvirtd "hosts" on one machine and a tiny guest that dirties memory.

``python -m backends.lab up|down|status`` (also ``novacron lab ...`` and ``scripts/lab``).
"""
