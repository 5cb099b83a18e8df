"""Admin pages of the classification app (the admin is WhaleFall's user interface)."""
