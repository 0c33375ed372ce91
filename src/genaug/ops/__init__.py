"""Operations on a whole genaug installation: retention (``genaug gc``, genaug.ops.policy) and
backups of its state with their restore (docs/backup.md)."""
