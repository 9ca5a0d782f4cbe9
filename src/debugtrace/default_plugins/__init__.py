"""Built-in backends, each an ordinary plugin module registered like any third-party one."""
