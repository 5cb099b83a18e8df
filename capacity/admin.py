"""Admin pages of the capacity app (the admin is WhaleFall's user interface)."""
