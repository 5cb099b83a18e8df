"""Account classifications, versioned rules and assignments."""
