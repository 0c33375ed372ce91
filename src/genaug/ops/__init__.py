"""Operations on a running installation: retention (``genaug gc``) and backups."""
