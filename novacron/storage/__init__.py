"""Distributed storage: placement (``hashing``, ``bounded``, ``domains``), redundancy codecs
(``codecs``) and durability models (``durability``). Pure: no I/O; the real sharded store is
``backends.sharded_store`` and the durability simulation ``sim.storage_durability``.
"""
