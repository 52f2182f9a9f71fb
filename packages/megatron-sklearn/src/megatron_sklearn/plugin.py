"""The sklearn plugin's hook implementations. Imports nothing heavy: registrations are lazy."""
