"""External database accounts, privilege snapshots and change history."""
