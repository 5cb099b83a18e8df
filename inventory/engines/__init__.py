"""One module per database engine; the only code that imports database drivers."""
