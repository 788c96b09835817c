"""Real servers for tests and benchmarks: rsync daemons, sshd, nginx, SMTP, and synthetic CVDs.

Every server binds 127.0.0.1 on a free port, runs in the foreground as a child process (or a
thread for SMTP), keeps its log in its work directory, and is stopped by its context manager
even when the test fails.
"""
