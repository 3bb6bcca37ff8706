"""Security: users, passwords and tokens (auth); grants live with the engine."""
