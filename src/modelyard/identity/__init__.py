"""Users, API tokens and server admins."""
