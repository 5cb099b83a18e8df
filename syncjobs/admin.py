"""Admin pages of the syncjobs app (the admin is WhaleFall's user interface)."""
