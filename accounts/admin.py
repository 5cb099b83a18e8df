"""Admin pages of the accounts app (the admin is WhaleFall's user interface)."""
