"""Operations on a whole genaug installation: backups of its state and their restore
(docs/backup.md)."""
