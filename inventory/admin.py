"""Admin pages of the inventory app (the admin is WhaleFall's user interface)."""
