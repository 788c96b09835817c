"""The I/O shell of syncd: ssh, HTTP, DNS, mail, files and the SQLite record."""
