"""The Docker sandbox: :mod:`.sandbox` runs commands in containers; :mod:`.images` builds and caches
the base and per-project environment images. Needs the ``docker`` extra."""
