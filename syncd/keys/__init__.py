"""The pusher keys: `keyring` (``pushers.toml`` and the authorized_keys files rendered from it,
pure) and `sshsig` (their OpenSSH signatures, ``ssh-keygen -Y``)."""
