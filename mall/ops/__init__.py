"""Operations on a whole mall: backups and restores, the ledger's witness (the `mall` commands' code)."""
