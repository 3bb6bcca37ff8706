"""Log records: the process's local file, and the lake's `logs` layer that searches read."""
